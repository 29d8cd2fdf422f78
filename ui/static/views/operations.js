// Operations (async chat completions, workflow runs and ingestions): the queue depth,
// a list filtered by status and type and paged by cursor, status badges, progress and
// times, a detail panel with the result or error, and cancel for pending or running
// ones (a 409, when it finished first, is shown as a message). While anything is
// pending or running, the view refreshes itself every two seconds.
// Routes: #/operations?status=&type=&id=<operation_id>

import { html, useEffect, useMemo, useRef, useState } from '../vendor/preact-htm.js';
import { ApiError, api } from '../lib/api.js';
import {
  JsonBlock, ProgressBar, UnixTime, ensureStyles, unixIso,
} from '../lib/engine.js';
import { fmtDate, fmtMs, fmtNumber } from '../lib/format.js';
import {
  ErrorNotice, Loading, Notice, Page, StatusBadge, Table, link, toast, uid, useAsync,
} from '../lib/ui.js';

ensureStyles();

const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'];
const TYPES = ['chat_completion', 'workflow', 'ingestion'];
const ACTIVE = new Set(['pending', 'running']);
const PAGE = 20;
const REFRESH_MS = 2000;

export default function OperationsView({ query, navigate }) {
  const status = STATUSES.includes(query.get('status')) ? query.get('status') : '';
  const type = TYPES.includes(query.get('type')) ? query.get('type') : '';
  const selected = query.get('id') || '';
  const [auto, setAuto] = useState(true);
  const [tick, setTick] = useState(0);
  const [message, setMessage] = useState(null);
  const ids = useMemo(() => ({ status: uid('status'), type: uid('type'), auto: uid('auto') }), []);

  const go = (changes) => {
    const next = new URLSearchParams(query);
    for (const [name, value] of Object.entries(changes)) {
      if (value) next.set(name, value); else next.delete(name);
    }
    navigate(`#/operations${next.toString() ? `?${next}` : ''}`, { replace: true });
  };

  const queue = useAsync((signal) => api('GET', '/admin/operations/queue', { signal }), [tick], { keep: true });
  const busy = queue.data ? queue.data.operations.pending + queue.data.operations.running > 0 : false;
  useEffect(() => {
    if (!auto || !busy) return undefined;
    const timer = setTimeout(() => setTick((n) => n + 1), REFRESH_MS);
    return () => clearTimeout(timer);
  }, [auto, busy, tick, queue.loading]);

  async function cancel(operationId) {
    setMessage(null);
    try {
      const op = await api('DELETE', `/v1/operations/${encodeURIComponent(operationId)}`);
      toast(`Operation ${operationId} ${op.status === 'cancelled' ? 'cancelled' : op.status}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setMessage({
        kind: error.status === 409 ? 'warn' : 'error',
        text: error.status === 409 ? `Could not cancel ${operationId}: ${error.message}` : error.message,
      });
    }
    setTick((n) => n + 1);
  }

  const counts = queue.data?.operations ?? {};
  return html`
    <${Page} title="Operations" subtitle="Async requests: chat completions, workflow runs and ingestions."
      actions=${html`<button type="button" onClick=${() => setTick((n) => n + 1)}>Refresh</button>`}>
      <${ErrorNotice} error=${queue.error} retry=${queue.reload} />
      ${queue.data && html`
        <div class="cards" aria-label="Queue">
          <div class="card"><div class="label">Waiting in the queue</div><div class="value" data-testid="queue-queued">${fmtNumber(queue.data.queue.queued)}</div></div>
          <div class="card"><div class="label">In progress</div><div class="value" data-testid="queue-in-progress">${fmtNumber(queue.data.queue.in_progress)}</div></div>
          <div class="card"><div class="label">Workers (${queue.data.mode})</div><div class="value">${fmtNumber(queue.data.workers)}</div></div>
          ${STATUSES.map((s) => html`
            <div class="card"><div class="label">${s[0].toUpperCase() + s.slice(1)}</div>
              <div class="value"><a href=${`#/operations?status=${s}`} aria-label=${`${counts[s] ?? 0} ${s}: show them`}>${fmtNumber(counts[s] ?? 0)}</a></div></div>`)}
        </div>`}
      <div class="filters">
        <div class="field"><label for=${ids.status}>Status</label>
          <select id=${ids.status} value=${status} onChange=${(e) => go({ status: e.currentTarget.value })}>
            <option value="">any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
          </select></div>
        <div class="field"><label for=${ids.type}>Type</label>
          <select id=${ids.type} value=${type} onChange=${(e) => go({ type: e.currentTarget.value })}>
            <option value="">any</option>${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
          </select></div>
        <div class="field check">
          <input id=${ids.auto} type="checkbox" checked=${auto} onChange=${(e) => setAuto(e.currentTarget.checked)} />
          <label for=${ids.auto}>Refresh while operations are pending or running</label>
        </div>
      </div>
      ${message && html`<div role="alert"><${Notice} kind=${message.kind}>${message.text}
        <button type="button" class="link" onClick=${() => setMessage(null)}>Dismiss</button></${Notice}></div>`}
      <div class=${selected ? 'ops-layout' : ''}>
        <${OperationList} key=${`${status}|${type}`} status=${status} type=${type} tick=${tick}
          selected=${selected} onSelect=${(id) => go({ id })} onCancel=${cancel} />
        ${selected && html`<${OperationDetail} key=${selected} id=${selected} tick=${tick}
          onClose=${() => go({ id: '' })} onCancel=${cancel} />`}
      </div>
    </${Page}>`;
}

function Progress({ op }) {
  const p = op.progress;
  if (p && typeof p === 'object' && p.documents_total) {
    const fraction = p.documents_done / p.documents_total;
    return html`<div>
      <${ProgressBar} fraction=${fraction} label=${`Progress of ${op.operation_id}`} />
      <span class="hint">${p.documents_done} of ${p.documents_total} documents${p.chunks_done !== undefined ? `, ${p.chunks_done} chunks` : ''}</span>
    </div>`;
  }
  if (p && typeof p === 'object' && Object.keys(p).length) {
    return html`<code>${Object.entries(p).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ')}</code>`;
  }
  if (op.status === 'completed') return html`<${ProgressBar} fraction=${1} label=${`Progress of ${op.operation_id}`} />`;
  return '—';
}

function duration(op) {
  if (!op.started_at) return '—';
  const end = op.finished_at ?? Date.now() / 1000;
  return fmtMs(Math.max(0, (end - op.started_at) * 1000));
}

/** One page of operations; the cursor of each page (`after`) is kept to go back. */
function OperationList({ status, type, tick, selected, onSelect, onCancel }) {
  const [cursors, setCursors] = useState([null]);
  const after = cursors[cursors.length - 1];
  const { data, error, loading, reload } = useAsync((signal) => api('GET', '/v1/operations', {
    query: { status, type, limit: PAGE, after }, signal,
  }), [after, tick], { keep: true });
  const rows = data?.data ?? [];
  const page = cursors.length;
  const selectLink = (id) => {
    const params = new URLSearchParams(window.location.hash.split('?')[1] || '');
    params.set('id', id);
    return `#/operations?${params}`;
  };

  return html`
    <div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Operations" rowKey="operation_id" rows=${rows}
          rowClass=${(op) => (op.operation_id === selected ? 'selected' : undefined)}
          empty=${status || type ? 'No operation matches.' : 'No operations yet. Send a request with ?async=true.'}
          columns=${[
            { key: 'operation_id', label: 'Operation', render: (op) => html`<a href=${selectLink(op.operation_id)}
              aria-current=${op.operation_id === selected ? 'true' : undefined} style=${{ whiteSpace: 'nowrap' }}
              onClick=${(e) => { e.preventDefault(); onSelect(op.operation_id); }}><code>${op.operation_id.slice(0, 11)}…</code></a>` },
            { key: 'type', label: 'Type' },
            { key: 'status', label: 'Status', render: (op) => html`<${StatusBadge} status=${op.status} />` },
            // With the detail panel open, it shows the rest.
            ...(selected ? [] : [{ key: 'progress', label: 'Progress', render: (op) => html`<${Progress} op=${op} />` }]),
            { key: 'created_at', label: 'Created', render: (op) => html`<${UnixTime} value=${op.created_at} />` },
            ...(selected ? [] : [
              { key: 'finished_at', label: 'Finished', render: (op) => html`<${UnixTime} value=${op.finished_at} />` },
              { key: 'duration', label: 'Duration', numeric: true, render: duration },
            ]),
          ]}
          actions=${(op) => ACTIVE.has(op.status) && html`<${CancelButton} op=${op} onCancel=${onCancel} />`} />
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled=${page === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous</button>
          <span>Page ${page}</span>
          <button type="button" disabled=${!data?.has_more || !rows.length}
            onClick=${() => setCursors([...cursors, rows[rows.length - 1].operation_id])}>Next</button>
        </nav>`}
    </div>`;
}

/** Cancel, after a second click (Escape or "Keep it" leaves it running). */
function CancelButton({ op, onCancel }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const yes = useRef();
  useEffect(() => { if (asking) yes.current?.focus(); }, [asking]);
  const id = op.operation_id;
  if (!asking) {
    return html`<button type="button" class="danger" aria-label=${`Cancel ${id}`}
      onClick=${() => setAsking(true)}>Cancel</button>`;
  }
  return html`
    <span class="confirm" role="group" aria-label=${`Cancel ${id}?`}
      onKeyDown=${(e) => { if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); setAsking(false); } }}>
      <span>Cancel it?</span>
      <button type="button" class="danger" disabled=${busy} ref=${yes}
        onClick=${async () => { setBusy(true); await onCancel(id); setBusy(false); setAsking(false); }}>Yes, cancel</button>
      <button type="button" onClick=${() => setAsking(false)}>Keep it</button>
    </span>`;
}

function OperationDetail({ id, tick, onClose, onCancel }) {
  const { data: op, error, loading, reload } = useAsync(
    (signal) => api('GET', `/v1/operations/${encodeURIComponent(id)}`, { signal }), [id, tick], { keep: true });
  return html`
    <section class="panel" aria-label="Operation detail" data-testid="operation-detail">
      <div class="page-head">
        <h2>Operation</h2>
        <button type="button" onClick=${onClose}>Close</button>
      </div>
      <p><code>${id}</code></p>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !op ? html`<${Loading} />` : op && html`
        <dl class="facts small-facts">
          <dt>Status</dt><dd><${StatusBadge} status=${op.status} /></dd>
          <dt>Type</dt><dd>${op.type}</dd>
          <dt>Created</dt><dd>${fmtDate(unixIso(op.created_at))}</dd>
          <dt>Started</dt><dd>${op.started_at ? fmtDate(unixIso(op.started_at)) : '—'}</dd>
          <dt>Finished</dt><dd>${op.finished_at ? fmtDate(unixIso(op.finished_at)) : '—'}</dd>
          <dt>Duration</dt><dd>${duration(op)}</dd>
          <dt>Progress</dt><dd><${Progress} op=${op} /></dd>
        </dl>
        ${ACTIVE.has(op.status) && html`<p><${CancelButton} op=${op} onCancel=${onCancel} /></p>`}
        ${op.error && html`
          <${Notice} kind="error" title=${`${op.error.type || 'Error'}:`}>${op.error.message}</${Notice}>
          <h3>Error</h3>
          <${JsonBlock} value=${op.error} label="Error" />`}
        ${op.result !== null && op.result !== undefined && html`
          <${ResultSummary} op=${op} />
          <h3>Result</h3>
          <${JsonBlock} value=${op.result} label="Result" />`}
        ${op.result == null && !op.error && html`<p class="muted">${ACTIVE.has(op.status) ? 'No result yet.' : 'No result.'}</p>`}`}
    </section>`;
}

function ResultSummary({ op }) {
  const r = op.result;
  if (op.type === 'chat_completion' && r?.choices) {
    return html`<h3>Reply</h3><p class="reply">${r.choices[0]?.message?.content ?? '(no text)'}</p>`;
  }
  if (op.type === 'workflow' && r?.run_id) {
    return html`<p>Workflow run: <a href=${link('workflows', r.workflow_id, 'runs', r.run_id)}>${r.run_id}</a>
      (${r.success ? 'succeeded' : 'failed'})</p>`;
  }
  if (op.type === 'ingestion' && Array.isArray(r?.data)) {
    return html`<p>${r.data.length} documents added, ${r.skipped?.length ?? 0} skipped, ${r.errors?.length ?? 0} failed.</p>`;
  }
  return null;
}
