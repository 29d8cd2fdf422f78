// Provider chains: ordered fallback steps over models. List, search, create, edit,
// delete; circuit state of each step's model; test call; history.
// Routes: #/chains, #/chains/<id>

import { html, useMemo, useState } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { fmtMs } from '../lib/format.js';
import { TestCallButton } from '../lib/testcall.js';
import {
  Check, ConfirmButton, ErrorNotice, Form, Input, JsonInput, Loading, Modal, Page, Pager,
  SearchBox, StatusBadge, Table, Tabs, TextArea, compact, json, link, list, num, pretty, search,
  text, toast, uid, useAsync, useField, useForm, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

export default function ChainsView({ path, navigate }) {
  return path.length
    ? html`<${ChainDetail} id=${path[0]} navigate=${navigate} />`
    : html`<${ChainList} navigate=${navigate} />`;
}

function ChainList({ navigate }) {
  const { data, error, loading, reload } = useAsync((signal) => fetchAll('/admin/chains', { signal }));
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const rows = search(data ?? [], query, ['id', 'name', (c) => c.aliases.join(' '),
    (c) => c.steps.map((s) => s.model).join(' ')]);
  const page = usePage(rows);

  async function remove(chain) {
    await api('DELETE', `/admin/chains/${encodeURIComponent(chain.id)}`);
    toast(`Chain ${chain.id} deleted`);
    reload();
  }

  return html`
    <${Page} title="Chains" subtitle="Ordered fallbacks over models; a chain id is used like a model id."
      actions=${html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New chain</button>`}>
      <div class="toolbar">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search chains"
          placeholder="Search by id, name, alias or model" />
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Chains" rows=${page.rows}
          empty=${query ? 'No chain matches.' : 'No chains yet.'}
          columns=${[
            { key: 'id', label: 'Id', render: (c) => html`<a href=${link('chains', c.id)}>${c.id}</a>` },
            { key: 'name', label: 'Name' },
            { key: 'steps', label: 'Steps', render: (c) => c.steps.map((s) => s.model).join(' → ') },
            { key: 'aliases', label: 'Aliases', render: (c) => c.aliases.join(', ') || '—' },
            { key: 'enabled', label: 'State', render: (c) => html`<${StatusBadge} status=${c.enabled ? 'enabled' : 'disabled'} />` },
          ]}
          actions=${(c) => html`
            <${TestCallButton} target=${c.id} label="Test" />
            <a class="button" href=${link('chains', c.id)} aria-label=${`Edit ${c.id}`}>Edit</a>
            <${ConfirmButton} question=${`Delete ${c.id}?`} confirmLabel="Delete"
              onConfirm=${() => remove(c)}>Delete</${ConfirmButton}>`} />
        <${Pager} ...${page.pager} />`}
      ${creating && html`
        <${Modal} title="New chain" wide onClose=${() => setCreating(false)}>
          <${ChainForm} onSaved=${(chain) => {
            toast(`Chain ${chain.id} created`);
            navigate(link('chains', chain.id));
          }} />
        </${Modal}>`}
    </${Page}>`;
}

function ChainDetail({ id, navigate }) {
  const path = `/admin/chains/${encodeURIComponent(id)}`;
  const { data: chain, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const [tab, setTab] = useState('health');
  const back = { href: link('chains'), label: 'Chains' };
  if (loading && !chain) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;

  async function remove() {
    await api('DELETE', path);
    toast(`Chain ${id} deleted`);
    navigate(link('chains'));
  }
  return html`
    <${Page} title=${chain.name || chain.id} back=${back}
      subtitle=${`${chain.id} · ${chain.steps.length} steps · version ${chain.version}`}
      actions=${html`
        <${TestCallButton} target=${chain.id} />
        <${ConfirmButton} question=${`Delete ${chain.id}?`} confirmLabel="Delete" onConfirm=${remove}>
          Delete</${ConfirmButton}>`}>
      <${Tabs} tabs=${[{ id: 'health', label: 'Steps and health' }, { id: 'edit', label: 'Settings' },
        { id: 'history', label: 'History' }]} current=${tab} onChange=${setTab} />
      <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
        ${tab === 'health' && html`<${ChainHealth} chain=${chain} />`}
        ${tab === 'edit' && html`
          <div class="panel"><${ChainForm} key=${chain.version} chain=${chain} onSaved=${() => { toast('Saved'); reload(); }} /></div>`}
        ${tab === 'history' && html`
          <${VersionHistory} key=${chain.version} path=${path}
            onRestore=${async (spec) => { await api('PUT', path, { body: spec }); reload(); }} />`}
      </div>
    </${Page}>`;
}

/** Each step's model (resolved from an alias if need be) and its deployments' circuits. */
function ChainHealth({ chain }) {
  const { data, error, loading, reload } = useAsync(async (signal) => {
    const models = await fetchAll('/admin/models', { signal });
    const byName = new Map();
    for (const m of models) [m.id, ...m.aliases].forEach((name) => byName.set(name, m.id));
    return Promise.all(chain.steps.map(async (step) => {
      const modelId = byName.get(step.model);
      if (!modelId) return { step, missing: true };
      try {
        return { step, modelId, health: await api('GET', `/admin/models/${encodeURIComponent(modelId)}/health`, { signal }) };
      } catch (healthError) {
        return { step, modelId, healthError };
      }
    }));
  }, [chain.version], { keep: true });
  if (loading && !data) return html`<${Loading} />`;
  if (error) return html`<${ErrorNotice} error=${error} retry=${reload} />`;
  return html`
    <div class="toolbar"><button type="button" onClick=${reload}>Refresh</button></div>
    <${Table} caption="Steps" rowKey=${(r) => chain.steps.indexOf(r.step)} rows=${data} columns=${[
      { key: 'n', label: '#', render: (r) => chain.steps.indexOf(r.step) + 1 },
      { key: 'model', label: 'Model', render: (r) => (r.modelId ? html`<a href=${link('models', r.modelId)}>${r.step.model}</a>` : r.step.model) },
      { key: 'retries', label: 'Retries', numeric: true, render: (r) => r.step.max_retries },
      { key: 'latency', label: 'Latency limit', numeric: true, render: (r) => fmtMs(r.step.max_latency_ms) },
      { key: 'failure', label: 'On failure', render: (r) => r.step.on_failure },
      { key: 'circuits', label: 'Circuits', render: (r) => (r.missing ? html`<${StatusBadge} status="error" label="no such model" />`
        : r.healthError ? r.healthError.message
          : r.health.deployments.map((d) => html`<span title=${d.key}><${StatusBadge} status=${d.circuit} label=${`${d.key}: ${d.circuit.replace('_', ' ')}`} /> </span>`)) },
    ]} />`;
}

function StepsEditor({ models }) {
  const field = useField('steps');
  const steps = field.value;
  const listId = useMemo(() => uid('models'), []);
  const update = (index, key, value) => field.set(steps.map((s, i) => (i === index ? { ...s, [key]: value } : s)));
  const move = (index, by) => {
    const next = [...steps];
    [next[index], next[index + by]] = [next[index + by], next[index]];
    field.set(next);
  };
  // The first model input carries the field's id, so an error about the steps focuses it.
  const ids = steps.map((_, i) => (i === 0 ? field.id : `${field.id}-${i}`));
  return html`
    <fieldset class=${field.error ? 'has-error' : ''}>
      <legend>Steps, tried in order</legend>
      <datalist id=${listId}>${models.map((m) => html`<option value=${m} />`)}</datalist>
      <div class="steps-editor">
        ${steps.map((step, i) => html`
          <div class="step-row" key=${i}>
            <span class="step-number">${i + 1}.</span>
            <div class="field"><label for=${ids[i]}>Model</label>
              <input id=${ids[i]} list=${listId} value=${step.model}
                aria-invalid=${field.error ? 'true' : undefined}
                onInput=${(e) => update(i, 'model', e.currentTarget.value)} /></div>
            <div class="field"><label for=${`${ids[i]}-r`}>Retries</label>
              <input id=${`${ids[i]}-r`} inputmode="numeric" value=${step.max_retries}
                onInput=${(e) => update(i, 'max_retries', e.currentTarget.value)} /></div>
            <div class="field"><label for=${`${ids[i]}-l`}>Latency limit (ms)</label>
              <input id=${`${ids[i]}-l`} inputmode="numeric" value=${step.max_latency_ms}
                onInput=${(e) => update(i, 'max_latency_ms', e.currentTarget.value)} /></div>
            <div class="field"><label for=${`${ids[i]}-f`}>On failure</label>
              <select id=${`${ids[i]}-f`} value=${step.on_failure}
                onChange=${(e) => update(i, 'on_failure', e.currentTarget.value)}>
                <option value="fallback">fallback</option><option value="fail">fail</option>
              </select></div>
            <div class="row-buttons">
              <button type="button" disabled=${i === 0} onClick=${() => move(i, -1)} aria-label=${`Move step ${i + 1} up`}>↑</button>
              <button type="button" disabled=${i === steps.length - 1} onClick=${() => move(i, 1)} aria-label=${`Move step ${i + 1} down`}>↓</button>
              <button type="button" onClick=${() => field.set(steps.filter((_, j) => j !== i))} aria-label=${`Remove step ${i + 1}`}>Remove</button>
            </div>
          </div>`)}
      </div>
      <p><button type="button" onClick=${() => field.set([...steps, emptyStep()])}>Add step</button></p>
      ${field.error && html`<p class="field-error" id=${`${field.id}-error`}>${field.error.message}</p>`}
    </fieldset>`;
}

const emptyStep = () => ({ model: '', max_retries: '2', max_latency_ms: '', on_failure: 'fallback' });

function stepsBody(values) {
  return values.steps.map((s, i) => {
    const v = { [`steps[${i}].max_retries`]: s.max_retries, [`steps[${i}].max_latency_ms`]: s.max_latency_ms };
    return compact({
      model: s.model.trim(),
      max_retries: num(v, `steps[${i}].max_retries`, { integer: true }),
      max_latency_ms: num(v, `steps[${i}].max_latency_ms`, { integer: true }),
      on_failure: s.on_failure,
    });
  });
}

export function ChainForm({ chain = null, onSaved }) {
  const creating = chain === null;
  const str = (v) => (v === null || v === undefined ? '' : String(v));
  const form = useForm({
    id: chain?.id ?? '', name: str(chain?.name), description: str(chain?.description),
    aliases: (chain?.aliases ?? []).join(', '), enabled: chain?.enabled ?? true,
    steps: chain ? chain.steps.map((s) => ({ model: s.model, max_retries: str(s.max_retries),
      max_latency_ms: str(s.max_latency_ms), on_failure: s.on_failure })) : [emptyStep()],
    'retry.base_delay_ms': str(chain?.retry?.base_delay_ms ?? 200),
    'retry.max_delay_ms': str(chain?.retry?.max_delay_ms ?? 5000),
    'retry.max_retry_after_ms': str(chain?.retry?.max_retry_after_ms ?? 30000),
    metadata: pretty(chain?.metadata ?? {}),
  });
  const { data: models } = useAsync((signal) => fetchAll('/admin/models', { signal }));
  const names = (models ?? []).flatMap((m) => [m.id, ...m.aliases]);

  async function submit(v) {
    const int = (name) => num(v, name, { integer: true });
    const body = {
      name: text(v, 'name'), description: text(v, 'description'), aliases: list(v, 'aliases'),
      enabled: Boolean(v.enabled), steps: stepsBody(v),
      retry: compact({
        base_delay_ms: int('retry.base_delay_ms'), max_delay_ms: int('retry.max_delay_ms'),
        max_retry_after_ms: int('retry.max_retry_after_ms'),
      }),
      metadata: json(v, 'metadata', {}),
    };
    const saved = creating
      ? await api('POST', '/admin/chains', { body: compact({ id: text(v, 'id'), ...body }) })
      : await api('PUT', `/admin/chains/${encodeURIComponent(chain.id)}`, { body });
    onSaved(saved);
  }
  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create chain' : 'Save changes'}>
      <div class="form-grid">
        ${creating && html`<${Input} name="id" label="Id" hint="Letters, digits and hyphens." />`}
        <${Input} name="name" label="Display name" />
        <${Input} name="aliases" label="Aliases" hint="Comma-separated." />
        <${Check} name="enabled" label="Enabled" />
      </div>
      <${StepsEditor} models=${names} />
      <details>
        <summary>Retry backoff, description, metadata</summary>
        <div class="form-grid">
          <${Input} name="retry.base_delay_ms" label="Base delay (ms)" inputmode="numeric" />
          <${Input} name="retry.max_delay_ms" label="Max delay (ms)" inputmode="numeric" />
          <${Input} name="retry.max_retry_after_ms" label="Longest Retry-After honoured (ms)" inputmode="numeric" />
          <div class="wide"><${TextArea} name="description" label="Description" rows="2" /></div>
          <div class="wide"><${JsonInput} name="metadata" label="Metadata" rows="3" /></div>
        </div>
      </details>
    </${Form}>`;
}
