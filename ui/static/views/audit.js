// The audit log: every admin change (who, what, when, before and after), newest
// first, filtered by the server (action, resource type and id, actor key, time range)
// and paged; each entry's change as a diff. The filters live in the hash
// (#/audit?resource_type=workflow&offset=50), so a filtered view can be bookmarked.

import { html, useMemo, useState } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { Diff } from '../lib/diff.js';
import { ensureStyles } from '../lib/engine.js';
import { fmtAgo, fmtDate } from '../lib/format.js';
import {
  ErrorNotice, Form, Input, Loading, Modal, Page, Pager, SearchBox, Select, StatusBadge, Table,
  link, search, uid, useAsync, useForm,
} from '../lib/ui.js';
import { stableJson } from '../lib/versions.js';

ensureStyles();

const PAGE = 50;
const FILTERS = ['action', 'resource_type', 'resource_id', 'actor_key_id', 'start', 'end'];
const ACTIONS = ['create', 'update', 'delete', 'suspend', 'activate', 'revoke'];
const TYPES = [
  { value: 'model', view: 'models' }, { value: 'chain', view: 'chains' },
  { value: 'prompt', view: 'prompts' }, { value: 'api_key', view: 'keys' },
  { value: 'team', view: 'teams' }, { value: 'budget', view: 'budgets' },
  { value: 'knowledge_base', view: 'knowledge' }, { value: 'workflow', view: 'workflows' },
];
const ACTION_STATUS = { create: 'active', delete: 'revoked', revoke: 'revoked', suspend: 'suspended', activate: 'active' };

/** `2026-01-02T03:04` (a datetime-local, local time) -> ISO in UTC, as the API wants. */
function toIso(local) {
  if (!local) return '';
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? local : date.toISOString();
}

/** ISO -> the datetime-local value in local time. */
function toLocal(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export default function AuditView({ query, navigate }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || '']));
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  const key = JSON.stringify(filters);
  const { data, error, loading, reload } = useAsync((signal) => api('GET', '/admin/audit-logs', {
    query: { ...filters, limit: PAGE, offset }, signal,
  }), [key, offset], { keep: true });
  const keys = useAsync((signal) => fetchAll('/admin/api-keys', { signal })).data ?? [];
  const keyName = useMemo(() => new Map(keys.map((k) => [k.id, k.name])), [keys]);
  const [text, setText] = useState('');
  const [open, setOpen] = useState(null);

  const hashFor = (values, at = 0) => {
    const next = new URLSearchParams();
    for (const name of FILTERS) if (values[name]) next.set(name, values[name]);
    if (at) next.set('offset', String(at));
    return `#/audit${next.toString() ? `?${next}` : ''}`;
  };

  async function apply(values) {
    const chosen = { ...values, start: toIso(values.start), end: toIso(values.end) };
    // Ask once before navigating, so a bad filter is reported next to its field.
    await api('GET', '/admin/audit-logs', { query: { ...chosen, limit: 1 } });
    navigate(hashFor(chosen), { replace: true });
  }

  const rows = search(data?.data ?? [], text, ['action', 'resource_type', 'resource_id', 'actor_key_id', 'request_id',
    (r) => keyName.get(r.actor_key_id)]);
  return html`
    <${Page} title="Audit log" subtitle="Every change made through the admin API: who, what, when, before and after.">
      <${AuditFilters} key=${key} filters=${filters} keys=${keys} onApply=${apply} />
      <div class="toolbar">
        <${SearchBox} value=${text} onInput=${setText} label="Search this page"
          placeholder="Search this page by action, resource, key or request id" />
        <span class="muted" aria-live="polite">${data ? `${data.total} ${data.total === 1 ? 'entry' : 'entries'}` : ''}</span>
        <button type="button" onClick=${reload}>Refresh</button>
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Audit log" rows=${rows}
          empty=${text || Object.values(filters).some(Boolean) ? 'No entry matches.' : 'No admin changes recorded yet.'}
          columns=${[
            { key: 'created_at', label: 'When', render: (r) => html`<time datetime=${r.created_at} title=${fmtDate(r.created_at)}>${fmtAgo(r.created_at)}</time>` },
            { key: 'actor_key_id', label: 'By', render: (r) => (r.actor_key_id
              ? html`<a href=${link('keys', r.actor_key_id)}>${keyName.get(r.actor_key_id) || r.actor_key_id}</a>` : '—') },
            { key: 'action', label: 'Action', render: (r) => html`<${StatusBadge} status=${ACTION_STATUS[r.action] || 'neutral'} label=${r.action} />` },
            { key: 'resource_type', label: 'Resource type' },
            { key: 'resource_id', label: 'Resource', render: (r) => {
              const view = TYPES.find((t) => t.value === r.resource_type)?.view;
              return view && r.action !== 'delete' ? html`<a href=${link(view, r.resource_id)}>${r.resource_id}</a>` : r.resource_id;
            } },
            { key: 'changed', label: 'Changed', render: (r) => changedFields(r).join(', ') || '—' },
            { key: 'request_id', label: 'Request', render: (r) => (r.request_id ? html`<code title=${r.request_id}>${r.request_id.slice(0, 8)}</code>` : '—') },
          ]}
          actions=${(r) => html`<button type="button" onClick=${() => setOpen(r)}
            aria-label=${`Changes of entry ${r.id}`}>Changes</button>`} />
        <${Pager} total=${data.total} limit=${PAGE} offset=${offset}
          onChange=${(at) => navigate(hashFor(filters, at), { replace: true })} />`}
      ${open && html`
        <${Modal} title=${`${open.action} ${open.resource_type} ${open.resource_id}`} wide onClose=${() => setOpen(null)}>
          <${Entry} entry=${open} keyName=${keyName} />
        </${Modal}>`}
    </${Page}>`;
}

function AuditFilters({ filters, keys, onApply }) {
  const form = useForm({ ...filters, start: toLocal(filters.start), end: toLocal(filters.end) });
  const any = { value: '', label: 'any' };
  const listId = useMemo(() => uid('actors'), []);
  return html`
    <div class="panel">
      <${Form} form=${form} onSubmit=${onApply} submitLabel="Apply filters"
        extraActions=${html`<a class="button" href="#/audit">Clear</a>`}>
        <div class="form-grid">
          <${Select} name="resource_type" label="Resource type" options=${[any, ...TYPES.map((t) => t.value)]} />
          <${Select} name="action" label="Action" options=${[any, ...ACTIONS]} />
          <${Input} name="resource_id" label="Resource id" />
          <${Input} name="actor_key_id" label="Changed by (key id)" list=${listId} />
          <datalist id=${listId}>${keys.map((k) => html`<option value=${k.id}>${k.name}</option>`)}</datalist>
          <${Input} name="start" label="From (local time)" type="datetime-local" />
          <${Input} name="end" label="Until (local time)" type="datetime-local" />
        </div>
      </${Form}>
    </div>`;
}

/** Top-level fields whose value differs between before and after. */
function changedFields(entry) {
  const before = entry.before || {};
  const after = entry.after || {};
  if (!entry.before || !entry.after) return [];
  const skip = new Set(['updated_at', 'version', 'last_used_at']);
  return [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => !skip.has(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}

function Entry({ entry, keyName }) {
  return html`
    <dl class="facts small-facts">
      <dt>When</dt><dd>${fmtDate(entry.created_at)} (${entry.created_at})</dd>
      <dt>By</dt><dd>${entry.actor_key_id ? `${keyName.get(entry.actor_key_id) || ''} ${entry.actor_key_id}` : '—'}</dd>
      <dt>Action</dt><dd>${entry.action}</dd>
      <dt>Resource</dt><dd>${entry.resource_type} <code>${entry.resource_id}</code></dd>
      <dt>Request id</dt><dd>${entry.request_id ? html`<code>${entry.request_id}</code>` : '—'}</dd>
    </dl>
    <h3>${entry.before && entry.after ? 'Changes' : entry.after ? 'Created as' : 'Before deletion'}</h3>
    <${Diff} before=${entry.before ? stableJson(entry.before) : ''} after=${entry.after ? stableJson(entry.after) : ''} context=${4} />`;
}
