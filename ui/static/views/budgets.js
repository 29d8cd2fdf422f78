// Budgets: spend limits per key or team and period, with their current status.
// Routes: #/budgets, #/budgets/<id>

import { html, useState } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { fmtDate, fmtPercent, fmtUsd } from '../lib/format.js';
import {
  Check, ConfirmButton, ErrorNotice, Form, Input, JsonInput, Loading, Modal, Page, Pager,
  SearchBox, Select, StatusBadge, Table, compact, json, link, num, pretty, search, text, toast,
  useAsync, useForm, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

const PERIODS = ['daily', 'weekly', 'monthly', 'lifetime'];

export default function BudgetsView({ path, navigate }) {
  return path.length
    ? html`<${BudgetDetail} id=${path[0]} navigate=${navigate} />`
    : html`<${BudgetList} navigate=${navigate} />`;
}

const statusOf = (id, signal) => api('GET', `/admin/budgets/${encodeURIComponent(id)}/status`, { signal });

function Spend({ status }) {
  if (!status) return '—';
  const kind = { ok: '', soft_limit: 'warn', exhausted: 'bad' }[status.state];
  return html`
    <div class=${`progress ${kind}`} role="img"
      aria-label=${`${fmtPercent(status.percent)} of the budget spent`}>
      <span style=${`width: ${Math.min(100, status.percent)}%`}></span>
    </div>
    <small>${fmtUsd(status.spent_usd)} of ${fmtUsd(status.amount_usd)} (${fmtPercent(status.percent)})</small>`;
}

function BudgetList({ navigate }) {
  const { data, error, loading, reload } = useAsync(async (signal) => {
    const budgets = await fetchAll('/admin/budgets', { signal });
    const statuses = await Promise.all(budgets.map((b) => statusOf(b.id, signal).catch(() => null)));
    return budgets.map((b, i) => ({ ...b, status: statuses[i] }));
  });
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const rows = search(data ?? [], query, ['id', 'name', 'scope_id', 'period']);
  const page = usePage(rows);
  async function remove(budget) {
    await api('DELETE', `/admin/budgets/${encodeURIComponent(budget.id)}`);
    toast(`Budget ${budget.id} deleted`);
    reload();
  }
  return html`
    <${Page} title="Budgets" subtitle="Spend allowed per key or team and period."
      actions=${html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New budget</button>`}>
      <div class="toolbar">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search budgets" placeholder="Search by id, key or team" />
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Budgets" rows=${page.rows} empty=${query ? 'No budget matches.' : 'No budgets yet.'}
          columns=${[
            { key: 'id', label: 'Id', render: (b) => html`<a href=${link('budgets', b.id)}>${b.name || b.id}</a>` },
            { key: 'scope', label: 'For', render: (b) => html`${b.scope} <a href=${link(b.scope === 'team' ? 'teams' : 'keys', b.scope_id)}>${b.scope_id}</a>` },
            { key: 'period', label: 'Period' },
            { key: 'spent', label: 'Spent', render: (b) => html`<${Spend} status=${b.status} />` },
            { key: 'state', label: 'State', render: (b) => (b.enabled ? (b.status ? html`<${StatusBadge} status=${b.status.state} />` : '—') : html`<${StatusBadge} status="disabled" />`) },
            { key: 'hard_limit', label: 'Enforced', render: (b) => (b.hard_limit ? 'refuses' : 'alerts only') },
          ]}
          actions=${(b) => html`
            <a class="button" href=${link('budgets', b.id)} aria-label=${`Edit ${b.id}`}>Edit</a>
            <${ConfirmButton} question=${`Delete ${b.id}?`} confirmLabel="Delete"
              onConfirm=${() => remove(b)}>Delete</${ConfirmButton}>`} />
        <${Pager} ...${page.pager} />`}
      ${creating && html`
        <${Modal} title="New budget" wide onClose=${() => setCreating(false)}>
          <${BudgetForm} onSaved=${(b) => { toast(`Budget ${b.id} created`); navigate(link('budgets', b.id)); }} />
        </${Modal}>`}
    </${Page}>`;
}

function BudgetDetail({ id, navigate }) {
  const path = `/admin/budgets/${encodeURIComponent(id)}`;
  const { data: budget, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const status = useAsync((signal) => statusOf(id, signal), [id, budget?.version], { keep: true });
  const back = { href: link('budgets'), label: 'Budgets' };
  if (loading && !budget) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  const s = status.data;
  async function remove() {
    await api('DELETE', path);
    toast(`Budget ${id} deleted`);
    navigate(link('budgets'));
  }
  return html`
    <${Page} title=${budget.name || budget.id} back=${back}
      subtitle=${`${budget.scope} ${budget.scope_id} · ${fmtUsd(budget.amount_usd)} ${budget.period}`}
      actions=${html`<${ConfirmButton} question=${`Delete ${id}?`} confirmLabel="Delete" onConfirm=${remove}>Delete</${ConfirmButton}>`}>
      <div class="panel">
        <h2>This period</h2>
        <${ErrorNotice} error=${status.error} retry=${status.reload} />
        ${s && html`
          <${Spend} status=${s} />
          <dl class="facts">
            <dt>State</dt><dd><${StatusBadge} status=${s.state} /></dd>
            <dt>Reserved by requests in flight</dt><dd>${fmtUsd(s.reserved_usd)}</dd>
            <dt>Remaining</dt><dd>${fmtUsd(s.remaining_usd)}</dd>
            <dt>Period</dt><dd>${fmtDate(s.period_start)} – ${s.period_end ? fmtDate(s.period_end) : 'no end'}</dd>
          </dl>`}
      </div>
      <div class="panel">
        <h2>Settings</h2>
        <${BudgetForm} key=${budget.version} budget=${budget} onSaved=${() => { toast('Saved'); reload(); }} />
      </div>
      <h2>History</h2>
      <${VersionHistory} key=${`v${budget.version}`} path=${path}
        onRestore=${async (spec) => { await api('PUT', path, { body: spec }); reload(); }} />
    </${Page}>`;
}

function BudgetForm({ budget = null, onSaved }) {
  const creating = budget === null;
  const form = useForm({
    id: '', name: budget?.name ?? '', scope: budget?.scope ?? 'team', scope_id: budget?.scope_id ?? '',
    amount_usd: budget ? String(budget.amount_usd) : '', period: budget?.period ?? 'monthly',
    soft_limit: String(Math.round((budget?.soft_limit ?? 0.8) * 100)),
    hard_limit: budget?.hard_limit ?? true, enabled: budget?.enabled ?? true,
    metadata: pretty(budget?.metadata ?? {}),
  });
  const teams = useAsync((signal) => fetchAll('/admin/teams', { signal })).data ?? [];
  const keys = useAsync((signal) => fetchAll('/admin/api-keys', { signal })).data ?? [];
  const targets = form.values.scope === 'team'
    ? teams.map((t) => ({ value: t.id, label: t.name || t.id }))
    : keys.map((k) => ({ value: k.id, label: `${k.name} (${k.prefix}…)` }));
  async function submit(v) {
    const soft = num(v, 'soft_limit');
    const body = {
      name: text(v, 'name'), scope: v.scope, scope_id: text(v, 'scope_id'),
      amount_usd: num(v, 'amount_usd'), period: v.period,
      soft_limit: soft === null ? null : soft / 100, hard_limit: Boolean(v.hard_limit),
      enabled: Boolean(v.enabled), metadata: json(v, 'metadata', {}),
    };
    const saved = creating
      ? await api('POST', '/admin/budgets', { body: compact({ id: text(v, 'id'), ...body }) })
      : await api('PUT', `/admin/budgets/${encodeURIComponent(budget.id)}`, { body });
    onSaved(saved);
  }
  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create budget' : 'Save changes'}>
      <div class="form-grid">
        ${creating && html`<${Input} name="id" label="Id" hint="Letters, digits and hyphens." />`}
        <${Input} name="name" label="Display name" />
        <${Select} name="scope" label="For a" options=${['team', 'key']} />
        <${Select} name="scope_id" label=${form.values.scope === 'team' ? 'Team' : 'Key'}
          options=${[{ value: '', label: 'choose…' }, ...targets]} />
        <${Input} name="amount_usd" label="Amount (USD)" inputmode="decimal" />
        <${Select} name="period" label="Period" options=${PERIODS} />
        <${Input} name="soft_limit" label="Alert at (% spent)" inputmode="numeric" />
        <${Check} name="hard_limit" label="Refuse requests once spent" />
        <${Check} name="enabled" label="Enabled" />
      </div>
      <${JsonInput} name="metadata" label="Metadata" rows="3" />
    </${Form}>`;
}
