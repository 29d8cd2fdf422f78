// Models: list, search, create, edit, delete; deployment health; test call; history.
// Routes: #/models, #/models/<id>

import { html, useState } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { fmtMs, fmtNumber } from '../lib/format.js';
import { TestCallButton } from '../lib/testcall.js';
import {
  Check, ConfirmButton, ErrorNotice, Form, Input, JsonInput, Loading, Modal, Page, Pager,
  SearchBox, Select, StatusBadge, Table, Tabs, TextArea, compact, json, link, list, num,
  pretty, search, text, toast, useAsync, useForm, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

const PROVIDERS = ['openai', 'openai_compatible', 'anthropic', 'azure_openai', 'bedrock'];
const ROUTING = ['weighted', 'round_robin', 'least_in_flight', 'latency'];
const PER_MILLION = 1e6;

export default function ModelsView({ path, navigate }) {
  return path.length
    ? html`<${ModelDetail} id=${path[0]} navigate=${navigate} />`
    : html`<${ModelList} navigate=${navigate} />`;
}

function ModelList({ navigate }) {
  const { data, error, loading, reload } = useAsync((signal) => fetchAll('/admin/models', { signal }));
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const rows = search(data ?? [], query, ['id', 'name', 'provider', 'model', (m) => m.aliases.join(' ')]);
  const page = usePage(rows);

  async function remove(model) {
    await api('DELETE', `/admin/models/${encodeURIComponent(model.id)}`);
    toast(`Model ${model.id} deleted`);
    reload();
  }

  return html`
    <${Page} title="Models" subtitle="Upstream models the gateway routes to."
      actions=${html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New model</button>`}>
      <div class="toolbar">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search models"
          placeholder="Search by id, name, provider or alias" />
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Models" rows=${page.rows}
          empty=${query ? 'No model matches.' : html`No models yet. Create one, or run <code>headrace seed</code>.`}
          columns=${[
            { key: 'id', label: 'Id', render: (m) => html`<a href=${link('models', m.id)}>${m.id}</a>` },
            { key: 'name', label: 'Name' },
            { key: 'type', label: 'Type' },
            { key: 'provider', label: 'Provider' },
            { key: 'model', label: 'Upstream model' },
            { key: 'aliases', label: 'Aliases', render: (m) => m.aliases.join(', ') || '—' },
            { key: 'enabled', label: 'State', render: (m) => html`<${StatusBadge} status=${m.enabled ? 'enabled' : 'disabled'} />` },
          ]}
          actions=${(m) => html`
            <${TestCallButton} target=${m.id} type=${m.type} label="Test" />
            <a class="button" href=${link('models', m.id)} aria-label=${`Edit ${m.id}`}>Edit</a>
            <${ConfirmButton} question=${`Delete ${m.id}?`} confirmLabel="Delete"
              onConfirm=${() => remove(m)}>Delete</${ConfirmButton}>`} />
        <${Pager} ...${page.pager} />`}
      ${creating && html`
        <${Modal} title="New model" wide onClose=${() => setCreating(false)}>
          <${ModelForm} onSaved=${(model) => {
            toast(`Model ${model.id} created`);
            navigate(link('models', model.id));
          }} />
        </${Modal}>`}
    </${Page}>`;
}

function ModelDetail({ id, navigate }) {
  const path = `/admin/models/${encodeURIComponent(id)}`;
  const { data: model, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const [tab, setTab] = useState('health');
  const back = { href: link('models'), label: 'Models' };
  if (loading && !model) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;

  async function remove() {
    await api('DELETE', path);
    toast(`Model ${id} deleted`);
    navigate(link('models'));
  }

  return html`
    <${Page} title=${model.name || model.id} back=${back}
      subtitle=${`${model.id} · ${model.provider} · ${model.model} · version ${model.version}`}
      actions=${html`
        <${TestCallButton} target=${model.id} type=${model.type} />
        <${ConfirmButton} question=${`Delete ${model.id}?`} confirmLabel="Delete" onConfirm=${remove}>
          Delete</${ConfirmButton}>`}>
      <${Tabs} tabs=${[{ id: 'health', label: 'Health' }, { id: 'edit', label: 'Settings' },
        { id: 'history', label: 'History' }]} current=${tab} onChange=${setTab} />
      <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
        ${tab === 'health' && html`<${ModelHealth} path=${path} />`}
        ${tab === 'edit' && html`
          <div class="panel"><${ModelForm} key=${model.version} model=${model} onSaved=${() => { toast('Saved'); reload(); }} /></div>`}
        ${tab === 'history' && html`
          <${VersionHistory} key=${model.version} path=${path}
            onRestore=${async (spec) => { await api('PUT', path, { body: spec }); reload(); }} />`}
      </div>
    </${Page}>`;
}

function ModelHealth({ path }) {
  const { data, error, loading, reload } = useAsync((signal) => api('GET', `${path}/health`, { signal }), [path]);
  if (loading && !data) return html`<${Loading} />`;
  if (error) return html`<${ErrorNotice} error=${error} retry=${reload} />`;
  return html`
    <div class="toolbar">
      <span>Routing: <strong>${data.routing}</strong></span>
      <button type="button" onClick=${reload}>Refresh</button>
    </div>
    <${Table} caption="Deployments" rowKey="key" rows=${data.deployments} columns=${[
      { key: 'key', label: 'Deployment' },
      { key: 'provider', label: 'Provider' },
      { key: 'model', label: 'Upstream model' },
      { key: 'enabled', label: 'Enabled', render: (d) => (d.enabled ? 'yes' : 'no') },
      { key: 'circuit', label: 'Circuit', render: (d) => html`<${StatusBadge} status=${d.circuit} />` },
      { key: 'in_flight', label: 'In flight', numeric: true, render: (d) => fmtNumber(d.in_flight) },
      { key: 'queued', label: 'Queued', numeric: true, render: (d) => fmtNumber(d.queued) },
      { key: 'ewma_latency_ms', label: 'Latency (EWMA)', numeric: true, render: (d) => fmtMs(d.ewma_latency_ms) },
    ]} />`;
}

function initialValues(m) {
  const perMillion = (v) => (v ? String(Number((v * PER_MILLION).toPrecision(12))) : '');
  const str = (v) => (v === null || v === undefined ? '' : String(v));
  return {
    id: m?.id ?? '', name: str(m?.name), description: str(m?.description), type: m?.type ?? 'chat',
    provider: m?.provider ?? 'openai', model: str(m?.model), base_url: str(m?.base_url),
    credentials: str(m?.credentials), api_version: str(m?.api_version), region: str(m?.region),
    aliases: (m?.aliases ?? []).join(', '),
    'pricing.input_cost_per_token': perMillion(m?.pricing?.input_cost_per_token),
    'pricing.output_cost_per_token': perMillion(m?.pricing?.output_cost_per_token),
    context_window: str(m?.context_window), dimensions: str(m?.dimensions),
    max_retries: str(m?.max_retries ?? 2), routing: m?.routing ?? 'weighted',
    max_concurrency: str(m?.max_concurrency), max_queue: str(m?.max_queue ?? 100),
    enabled: m?.enabled ?? true,
    defaults: m ? pretty(compact(m.defaults)) : '{}',
    timeouts: m ? pretty(m.timeouts) : '',
    circuit_breaker: m ? pretty(m.circuit_breaker) : '',
    deployments: pretty(m?.deployments ?? []),
    metadata: pretty(m?.metadata ?? {}),
  };
}

function toBody(v, creating) {
  const int = (name) => num(v, name, { integer: true });
  // 0.8 / 1e6 is 8.000000000000001e-7: rounded, a price saved unchanged stays the same.
  const price = (name) => Number(((num(v, name) ?? 0) / PER_MILLION).toPrecision(12));
  const body = {
    name: text(v, 'name'), description: text(v, 'description'), type: v.type,
    provider: v.provider, model: text(v, 'model'), base_url: text(v, 'base_url'),
    credentials: text(v, 'credentials'), api_version: text(v, 'api_version'),
    region: text(v, 'region'), aliases: list(v, 'aliases'),
    pricing: {
      input_cost_per_token: price('pricing.input_cost_per_token'),
      output_cost_per_token: price('pricing.output_cost_per_token'),
    },
    context_window: int('context_window'), dimensions: int('dimensions'),
    max_retries: int('max_retries'), routing: v.routing, max_concurrency: int('max_concurrency'),
    max_queue: int('max_queue'), enabled: Boolean(v.enabled),
    defaults: json(v, 'defaults', {}), timeouts: json(v, 'timeouts'),
    circuit_breaker: json(v, 'circuit_breaker'), deployments: json(v, 'deployments', []),
    metadata: json(v, 'metadata', {}),
  };
  // On create, absent means default; in a merge patch, null resets a field to its default.
  return creating ? compact({ id: text(v, 'id'), ...body }) : body;
}

export function ModelForm({ model = null, onSaved }) {
  const form = useForm(initialValues(model));
  const creating = model === null;
  const v = form.values;
  async function submit(values) {
    const body = toBody(values, creating);
    const saved = creating
      ? await api('POST', '/admin/models', { body })
      : await api('PUT', `/admin/models/${encodeURIComponent(model.id)}`, { body });
    onSaved(saved);
  }
  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create model' : 'Save changes'}>
      <div class="form-grid">
        ${creating && html`<${Input} name="id" label="Id" required
          hint="Letters, digits and hyphens; what clients send as model." />`}
        <${Input} name="name" label="Display name" />
        <${Select} name="type" label="Type" options=${['chat', 'embedding']} />
        <${Select} name="provider" label="Provider" options=${PROVIDERS} />
        <${Input} name="model" label="Upstream model" required
          hint="The provider's model name (Azure: deployment name)." />
        <${Input} name="credentials" label="Credentials reference"
          hint="env:NAME, file:/path, vault:mount/path#field or aws:secret-id#field" />
        ${['openai_compatible', 'azure_openai', 'openai', 'anthropic'].includes(v.provider) && html`
          <${Input} name="base_url" label="Base URL" type="url"
            hint=${v.provider === 'openai_compatible' || v.provider === 'azure_openai' ? 'Required for this provider.' : 'Optional.'} />`}
        ${v.provider === 'azure_openai' && html`<${Input} name="api_version" label="API version" />`}
        ${v.provider === 'bedrock' && html`<${Input} name="region" label="AWS region" />`}
        <${Input} name="aliases" label="Aliases" hint="Other names clients may use, comma-separated." />
        <${Input} name="pricing.input_cost_per_token" label="Input price (USD per 1M tokens)" inputmode="decimal" />
        <${Input} name="pricing.output_cost_per_token" label="Output price (USD per 1M tokens)" inputmode="decimal" />
        <${Input} name="context_window" label="Context window (tokens)" inputmode="numeric" />
        ${v.type === 'embedding' && html`<${Input} name="dimensions" label="Dimensions" inputmode="numeric" />`}
        <${Input} name="max_retries" label="Retries" inputmode="numeric" />
        <${Select} name="routing" label="Routing between deployments" options=${ROUTING} />
        <${Input} name="max_concurrency" label="Max concurrent calls" inputmode="numeric" hint="Empty: unlimited." />
        <${Input} name="max_queue" label="Max queued calls" inputmode="numeric" />
        <div class="wide"><${TextArea} name="description" label="Description" rows="2" /></div>
        <${Check} name="enabled" label="Enabled" />
      </div>
      <details open=${!creating && model.deployments.length > 0}>
        <summary>Deployments, defaults, timeouts, circuit breaker (JSON)</summary>
        <div class="form-grid">
          <div class="wide"><${JsonInput} name="deployments" label="Deployments" rows="6"
            hint='[{"id": "east", "base_url": "...", "weight": 2}]: each overrides the model’s endpoint.' /></div>
          <${JsonInput} name="defaults" label="Default parameters" rows="4" hint='e.g. {"temperature": 0.2}' />
          <${JsonInput} name="timeouts" label="Timeouts" rows="4" />
          <${JsonInput} name="circuit_breaker" label="Circuit breaker" rows="4" />
          <${JsonInput} name="metadata" label="Metadata" rows="4" />
        </div>
      </details>
    </${Form}>`;
}
