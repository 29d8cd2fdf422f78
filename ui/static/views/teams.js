// Teams: list, search, create, edit, delete; a team's keys and budgets; history.
// Routes: #/teams, #/teams/<id>

import { html, useState } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { fmtUsd } from '../lib/format.js';
import { LIMITS, RateLimitFields, limitValues, limitsBody } from '../lib/governance.js';
import {
  ConfirmButton, ErrorNotice, Form, Input, JsonInput, Loading, Modal, Page, Pager, SearchBox,
  StatusBadge, Table, TextArea, compact, json, link, pretty, search, text, toast, useAsync,
  useForm, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

export default function TeamsView({ path, navigate }) {
  return path.length
    ? html`<${TeamDetail} id=${path[0]} navigate=${navigate} />`
    : html`<${TeamList} navigate=${navigate} />`;
}

function limitsSummary(limits) {
  const set = LIMITS.filter(([name]) => limits?.[name]);
  return set.length ? set.map(([name, label]) => `${limits[name]} ${label.toLowerCase()}`).join(', ') : 'none';
}

function TeamList({ navigate }) {
  const { data, error, loading, reload } = useAsync((signal) => fetchAll('/admin/teams', { signal }));
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const rows = search(data ?? [], query, ['id', 'name', 'description']);
  const page = usePage(rows);
  async function remove(team) {
    await api('DELETE', `/admin/teams/${encodeURIComponent(team.id)}`);
    toast(`Team ${team.id} deleted`);
    reload();
  }
  return html`
    <${Page} title="Teams" subtitle="Groups of keys sharing rate limits and budgets."
      actions=${html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New team</button>`}>
      <div class="toolbar">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search teams" placeholder="Search teams" />
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Teams" rows=${page.rows} empty=${query ? 'No team matches.' : 'No teams yet.'}
          columns=${[
            { key: 'id', label: 'Id', render: (t) => html`<a href=${link('teams', t.id)}>${t.id}</a>` },
            { key: 'name', label: 'Name' },
            { key: 'rate_limits', label: 'Rate limits', render: (t) => limitsSummary(t.rate_limits) },
            { key: 'version', label: 'Version', numeric: true },
          ]}
          actions=${(t) => html`
            <a class="button" href=${link('teams', t.id)} aria-label=${`Edit ${t.id}`}>Edit</a>
            <${ConfirmButton} question=${`Delete ${t.id}?`} confirmLabel="Delete"
              onConfirm=${() => remove(t)}>Delete</${ConfirmButton}>`} />
        <${Pager} ...${page.pager} />`}
      ${creating && html`
        <${Modal} title="New team" wide onClose=${() => setCreating(false)}>
          <${TeamForm} onSaved=${(team) => { toast(`Team ${team.id} created`); navigate(link('teams', team.id)); }} />
        </${Modal}>`}
    </${Page}>`;
}

function TeamDetail({ id, navigate }) {
  const path = `/admin/teams/${encodeURIComponent(id)}`;
  const { data: team, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const members = useAsync((signal) => fetchAll('/admin/api-keys', { query: { team_id: id }, signal }), [id]);
  const budgets = useAsync((signal) => fetchAll('/admin/budgets', { signal }), [id]);
  const back = { href: link('teams'), label: 'Teams' };
  if (loading && !team) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  const teamBudgets = (budgets.data ?? []).filter((b) => b.scope === 'team' && b.scope_id === id);
  async function remove() {
    await api('DELETE', path);
    toast(`Team ${id} deleted`);
    navigate(link('teams'));
  }
  return html`
    <${Page} title=${team.name || team.id} back=${back} subtitle=${`${team.id} · version ${team.version}`}
      actions=${html`<${ConfirmButton} question=${`Delete ${id}?`} confirmLabel="Delete" onConfirm=${remove}>Delete</${ConfirmButton}>`}>
      <div class="grid">
        <div>
          <h2>Keys</h2>
          <${ErrorNotice} error=${members.error} />
          <${Table} caption="Keys of the team" rows=${members.data ?? []} empty="No keys in this team."
            columns=${[
              { key: 'name', label: 'Name', render: (k) => html`<a href=${link('keys', k.id)}>${k.name}</a>` },
              { key: 'status', label: 'Status', render: (k) => html`<${StatusBadge} status=${k.status} />` },
            ]} />
        </div>
        <div>
          <h2>Budgets</h2>
          <${Table} caption="Budgets of the team" rows=${teamBudgets} empty="No budgets for this team."
            columns=${[
              { key: 'id', label: 'Budget', render: (b) => html`<a href=${link('budgets', b.id)}>${b.name || b.id}</a>` },
              { key: 'amount_usd', label: 'Amount', numeric: true, render: (b) => `${fmtUsd(b.amount_usd)} ${b.period}` },
            ]} />
        </div>
      </div>
      <div class="panel">
        <h2>Settings</h2>
        <${TeamForm} key=${team.version} team=${team} onSaved=${() => { toast('Saved'); reload(); }} />
      </div>
      <h2>History</h2>
      <${VersionHistory} key=${`v${team.version}`} path=${path}
        onRestore=${async (spec) => { await api('PUT', path, { body: spec }); reload(); }} />
    </${Page}>`;
}

function TeamForm({ team = null, onSaved }) {
  const creating = team === null;
  const form = useForm({
    id: '', name: team?.name ?? '', description: team?.description ?? '',
    ...limitValues(team?.rate_limits), metadata: pretty(team?.metadata ?? {}),
  });
  async function submit(v) {
    const body = {
      name: text(v, 'name'), description: text(v, 'description'),
      rate_limits: limitsBody(v), metadata: json(v, 'metadata', {}),
    };
    const saved = creating
      ? await api('POST', '/admin/teams', { body: compact({ id: text(v, 'id'), ...body }) })
      : await api('PUT', `/admin/teams/${encodeURIComponent(team.id)}`, { body });
    onSaved(saved);
  }
  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create team' : 'Save changes'}>
      <div class="form-grid">
        ${creating && html`<${Input} name="id" label="Id" hint="Letters, digits and hyphens." />`}
        <${Input} name="name" label="Display name" />
        <div class="wide"><${TextArea} name="description" label="Description" rows="2" /></div>
      </div>
      <${RateLimitFields} />
      <${JsonInput} name="metadata" label="Metadata" rows="3" />
    </${Form}>`;
}
