// API keys: list with status and team filters, search, create (the secret is shown
// once, with a copy button), edit, suspend, activate, revoke, delete.
// Routes: #/keys, #/keys/<id>

import { html, useMemo, useState } from '../vendor/preact-htm.js';
import { api, fetchAll, getKey } from '../lib/api.js';
import { fmtAgo, fmtDate, fmtNumber, fmtUsd } from '../lib/format.js';
import {
  PermissionFields, RateLimitFields, limitValues, limitsBody, permissionValues, permissionsBody,
} from '../lib/governance.js';
import {
  Check, ConfirmButton, CopyButton, ErrorNotice, Form, Input, JsonInput, Loading, Modal, Notice,
  Page, Pager, SearchBox, Select, StatusBadge, Table, compact, json, link, pretty, search, text,
  toast, uid, useAsync, useForm, usePage,
} from '../lib/ui.js';

const STATUSES = ['active', 'suspended', 'revoked', 'expired'];

export default function KeysView({ path, query, navigate }) {
  return path.length
    ? html`<${KeyDetail} id=${path[0]} navigate=${navigate} />`
    : html`<${KeyList} query=${query} navigate=${navigate} />`;
}

function useTeams() {
  return useAsync((signal) => fetchAll('/admin/teams', { signal })).data ?? [];
}

function KeyList({ query: params, navigate }) {
  const status = params.get('status') || '';
  const team = params.get('team_id') || '';
  const { data, error, loading, reload } = useAsync(
    (signal) => fetchAll('/admin/api-keys', { query: { status, team_id: team }, signal }), [status, team]);
  const teams = useTeams();
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState(null);
  const rows = search(data ?? [], query, ['id', 'name', 'prefix', 'team_id']);
  const page = usePage(rows);
  const ids = useMemo(() => [uid('status'), uid('team')], []);
  const filter = (name, value) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value); else next.delete(name);
    navigate(`#/keys${next.toString() ? `?${next}` : ''}`, { replace: true });
  };

  return html`
    <${Page} title="API keys" subtitle="Who may call Headrace, with what permissions and limits."
      actions=${html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New key</button>`}>
      <div class="filters">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search keys" placeholder="Search by name, id or prefix" />
        <div class="field"><label for=${ids[0]}>Status</label>
          <select id=${ids[0]} value=${status} onChange=${(e) => filter('status', e.currentTarget.value)}>
            <option value="">any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
          </select></div>
        <div class="field"><label for=${ids[1]}>Team</label>
          <select id=${ids[1]} value=${team} onChange=${(e) => filter('team_id', e.currentTarget.value)}>
            <option value="">any</option>${teams.map((t) => html`<option value=${t.id}>${t.name || t.id}</option>`)}
          </select></div>
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="API keys" rows=${page.rows} empty=${query || status || team ? 'No key matches.' : 'No keys yet.'}
          columns=${[
            { key: 'name', label: 'Name', render: (k) => html`<a href=${link('keys', k.id)}>${k.name}</a>${
              getKey()?.startsWith(k.prefix) ? html` <span class="badge">this session</span>` : ''}` },
            { key: 'prefix', label: 'Key', render: (k) => html`<code>${k.prefix}…</code>` },
            { key: 'status', label: 'Status', render: (k) => html`<${StatusBadge} status=${k.status} />` },
            { key: 'admin', label: 'Admin', render: (k) => (k.admin ? 'yes' : 'no') },
            { key: 'team_id', label: 'Team', render: (k) => (k.team_id ? html`<a href=${link('teams', k.team_id)}>${k.team_id}</a>` : '—') },
            { key: 'last_used_at', label: 'Last used', render: (k) => fmtAgo(k.last_used_at) },
            { key: 'created_at', label: 'Created', render: (k) => fmtDate(k.created_at) },
          ]}
          actions=${(k) => html`<${StatusActions} apiKey=${k} onChanged=${reload} />`} />
        <${Pager} ...${page.pager} />`}
      ${creating && html`
        <${Modal} title=${created ? 'Key created' : 'New API key'} wide
          onClose=${() => { setCreating(false); setCreated(null); reload(); }}>
          ${created ? html`<${SecretOnce} apiKey=${created} onDone=${() => { setCreating(false); setCreated(null); reload(); }} />`
            : html`<${KeyForm} teams=${teams} onSaved=${setCreated} />`}
        </${Modal}>`}
    </${Page}>`;
}

/** The secret of a new key: shown here once, never again. */
function SecretOnce({ apiKey, onDone }) {
  return html`
    <${Notice} kind="warn" title="Copy this key now.">It is shown only once: Headrace keeps only its hash.</${Notice}>
    <p class="secret" data-testid="new-secret">${apiKey.secret}</p>
    <div class="form-actions">
      <${CopyButton} text=${apiKey.secret} label="Copy key" />
      <button type="button" class="primary" onClick=${onDone}>I have stored it</button>
    </div>`;
}

function StatusActions({ apiKey, onChanged, showDelete = false, onDeleted }) {
  const path = `/admin/api-keys/${encodeURIComponent(apiKey.id)}`;
  const act = async (action) => {
    await api('POST', `${path}/${action}`);
    toast(`Key ${apiKey.name}: ${action === 'activate' ? 'activated' : `${action}d`}`);
    onChanged();
  };
  const remove = async () => {
    await api('DELETE', path);
    toast(`Key ${apiKey.name} deleted`);
    (onDeleted || onChanged)();
  };
  const { status } = apiKey;
  return html`
    ${status === 'active' && html`<button type="button" onClick=${() => act('suspend').catch((e) => toast(e.message, 'error'))}
      aria-label=${`Suspend ${apiKey.name}`}>Suspend</button>`}
    ${status === 'suspended' && html`<button type="button" onClick=${() => act('activate').catch((e) => toast(e.message, 'error'))}
      aria-label=${`Activate ${apiKey.name}`}>Activate</button>`}
    ${status !== 'revoked' && html`<${ConfirmButton} question=${`Revoke ${apiKey.name} for good?`}
      confirmLabel="Revoke" onConfirm=${() => act('revoke')}>Revoke</${ConfirmButton}>`}
    ${showDelete && html`<${ConfirmButton} question=${`Delete ${apiKey.name}?`} confirmLabel="Delete"
      onConfirm=${remove}>Delete</${ConfirmButton}>`}`;
}

function KeyDetail({ id, navigate }) {
  const path = `/admin/api-keys/${encodeURIComponent(id)}`;
  const { data: key, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const usage = useAsync((signal) => api('GET', '/admin/usage', { query: { key_id: id }, signal }), [id]);
  const teams = useTeams();
  const back = { href: link('keys'), label: 'API keys' };
  if (loading && !key) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  const totals = usage.data?.totals;
  return html`
    <${Page} title=${key.name} back=${back} subtitle=${html`<code>${key.prefix}…</code> · ${key.id}`}
      actions=${html`<${StatusActions} apiKey=${key} onChanged=${reload} showDelete
        onDeleted=${() => navigate(link('keys'))} />`}>
      <div class="grid">
        <div class="panel">
          <h2>Key</h2>
          <dl class="facts">
            <dt>Status</dt><dd><${StatusBadge} status=${key.status} /></dd>
            <dt>Admin</dt><dd>${key.admin ? 'yes' : 'no'}</dd>
            <dt>Team</dt><dd>${key.team_id ? html`<a href=${link('teams', key.team_id)}>${key.team_id}</a>` : '—'}</dd>
            <dt>Created</dt><dd>${fmtDate(key.created_at)}</dd>
            <dt>Last used</dt><dd>${fmtAgo(key.last_used_at)}</dd>
            <dt>Expires</dt><dd>${key.expires_at ? fmtDate(key.expires_at) : 'never'}</dd>
          </dl>
        </div>
        <div class="panel">
          <h2>Usage (all time)</h2>
          ${totals ? html`<dl class="facts">
            <dt>Requests</dt><dd>${fmtNumber(totals.requests)} (${fmtNumber(totals.errors)} failed)</dd>
            <dt>Tokens</dt><dd>${fmtNumber(totals.total_tokens)}</dd>
            <dt>Cost</dt><dd>${fmtUsd(totals.cost_usd)}</dd>
          </dl>
          <a href=${`#/usage?key_id=${encodeURIComponent(id)}&group_by=day`}>Usage by day</a>` : html`<${ErrorNotice} error=${usage.error} />`}
        </div>
      </div>
      <div class="panel">
        <h2>Settings</h2>
        <${KeyForm} key=${key.updated_at} apiKey=${key} teams=${teams} onSaved=${() => { toast('Saved'); reload(); }} />
      </div>
    </${Page}>`;
}

function localInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function KeyForm({ apiKey = null, teams, onSaved }) {
  const creating = apiKey === null;
  const form = useForm({
    name: apiKey?.name ?? '', team_id: apiKey?.team_id ?? '', admin: apiKey?.admin ?? false,
    environment: 'live', expires_at: localInput(apiKey?.expires_at),
    ...permissionValues(apiKey?.permissions), ...limitValues(apiKey?.rate_limits),
    metadata: pretty(apiKey?.metadata ?? {}),
  });
  async function submit(v) {
    const expires = text(v, 'expires_at');
    const body = {
      name: text(v, 'name'), team_id: text(v, 'team_id'), admin: Boolean(v.admin),
      expires_at: expires ? new Date(expires).toISOString() : null,
      permissions: permissionsBody(v), rate_limits: limitsBody(v), metadata: json(v, 'metadata', {}),
    };
    const saved = creating
      ? await api('POST', '/admin/api-keys', { body: compact({ ...body, environment: v.environment }) })
      : await api('PUT', `/admin/api-keys/${encodeURIComponent(apiKey.id)}`, { body });
    onSaved(saved);
  }
  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create key' : 'Save changes'}>
      <div class="form-grid">
        <${Input} name="name" label="Name" />
        <${Select} name="team_id" label="Team" options=${[{ value: '', label: 'none' },
          ...teams.map((t) => ({ value: t.id, label: t.name || t.id }))]} />
        ${creating && html`<${Select} name="environment" label="Environment"
          options=${[{ value: 'live', label: 'live (pk_live_…)' }, { value: 'test', label: 'test (pk_test_…)' }]} />`}
        <${Input} name="expires_at" label="Expires" type="datetime-local" hint="Empty: never." />
        <${Check} name="admin" label="Admin key (may use /admin)" />
      </div>
      <details>
        <summary>Permissions, rate limits, metadata</summary>
        <${PermissionFields} />
        <${RateLimitFields} />
        <${JsonInput} name="metadata" label="Metadata" rows="3" />
      </details>
    </${Form}>`;
}
