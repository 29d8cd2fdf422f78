// Usage: requests, errors, tokens, cost and latency with filters and grouping, and a
// CSV export of what is shown. The filters live in the hash (#/usage?group_by=day&model=x),
// so a filtered view can be bookmarked.

import { html, useMemo } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { fmtMs, fmtNumber, fmtPercent, fmtUsd } from '../lib/format.js';
import {
  ErrorNotice, Form, Input, Loading, Page, Select, Table, useAsync, useForm,
} from '../lib/ui.js';

const GROUPS = [
  { value: 'none', label: 'no grouping' }, { value: 'hour', label: 'hour (UTC)' },
  { value: 'day', label: 'day (UTC)' }, { value: 'model', label: 'model' },
  { value: 'key', label: 'key' }, { value: 'team', label: 'team' },
];
const GROUP_LABEL = { hour: 'Hour (UTC)', day: 'Day (UTC)', model: 'Model', key: 'Key', team: 'Team' };
const FILTERS = ['key_id', 'team_id', 'model', 'start', 'end', 'group_by'];
const COLUMNS = ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens',
  'cost_usd', 'avg_latency_ms'];

export default function UsageView({ query, navigate }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || '']));
  if (!filters.group_by) filters.group_by = 'day';
  const key = JSON.stringify(filters);
  const report = useAsync((signal) => api('GET', '/admin/usage', { query: filters, signal }), [key]);
  const keys = useAsync((signal) => fetchAll('/admin/api-keys', { signal })).data ?? [];
  const teams = useAsync((signal) => fetchAll('/admin/teams', { signal })).data ?? [];
  const models = useAsync((signal) => fetchAll('/admin/models', { signal })).data ?? [];
  const keyName = useMemo(() => new Map(keys.map((k) => [k.id, k.name])), [keys]);

  async function apply(values) {
    const chosen = Object.fromEntries(FILTERS.map((name) => [name, values[name] || '']));
    // Ask once before navigating, so a bad filter is reported next to its field.
    await api('GET', '/admin/usage', { query: { ...chosen, limit: 1 } });
    const next = new URLSearchParams();
    for (const name of FILTERS) if (values[name]) next.set(name, values[name]);
    navigate(`#/usage?${next}`, { replace: true });
  }

  const data = report.data;
  const groups = data?.groups ?? [];
  const label = (g) => {
    if (g.key === null) return data.group_by === 'team' ? '(no team)' : data.group_by === 'key' ? '(no key)' : '(none)';
    return data.group_by === 'key' && keyName.has(g.key) ? `${keyName.get(g.key)} (${g.key})` : g.key;
  };
  const columns = [
    ...(data && data.group_by !== 'none' ? [{ key: 'key', label: GROUP_LABEL[data.group_by], render: label }] : []),
    { key: 'requests', label: 'Requests', numeric: true, render: (r) => fmtNumber(r.requests) },
    { key: 'errors', label: 'Errors', numeric: true, render: (r) => `${fmtNumber(r.errors)} (${fmtPercent(r.requests ? (100 * r.errors) / r.requests : null)})` },
    { key: 'prompt_tokens', label: 'Prompt tokens', numeric: true, render: (r) => fmtNumber(r.prompt_tokens) },
    { key: 'completion_tokens', label: 'Completion tokens', numeric: true, render: (r) => fmtNumber(r.completion_tokens) },
    { key: 'cost_usd', label: 'Cost', numeric: true, render: (r) => fmtUsd(r.cost_usd) },
    { key: 'avg_latency_ms', label: 'Avg latency', numeric: true, render: (r) => fmtMs(r.avg_latency_ms) },
  ];
  const rows = data ? [...groups, ...(data.group_by === 'none' || groups.length === 0 ? [] : [{ ...data.totals, key: 'Total', total: true }])] : [];
  const shown = data?.group_by === 'none' && data ? [data.totals] : rows;

  return html`
    <${Page} title="Usage" subtitle="What each key, team and model used and cost."
      actions=${data && html`<button type="button" onClick=${() => downloadCsv(data, keyName)}>Export CSV</button>`}>
      <${UsageFilters} key=${key} filters=${filters} keys=${keys} teams=${teams} models=${models} onApply=${apply} />
      <${ErrorNotice} error=${report.error} retry=${report.reload} />
      ${report.loading && !data ? html`<${Loading} />` : data && html`
        <div class="cards" aria-label="Totals">
          <div class="card"><div class="label">Requests</div><div class="value">${fmtNumber(data.totals.requests)}</div></div>
          <div class="card"><div class="label">Errors</div><div class="value">${fmtNumber(data.totals.errors)}</div></div>
          <div class="card"><div class="label">Tokens</div><div class="value">${fmtNumber(data.totals.total_tokens)}</div></div>
          <div class="card"><div class="label">Cost</div><div class="value">${fmtUsd(data.totals.cost_usd)}</div></div>
          <div class="card"><div class="label">Avg latency</div><div class="value">${fmtMs(data.totals.avg_latency_ms)}</div></div>
        </div>
        <${Table} caption="Usage" rows=${shown} rowKey=${(r) => (r.total ? '__total' : r.key ?? '__none')}
          rowClass=${(r) => (r.total ? 'total' : undefined)}
          empty="No usage recorded for these filters." columns=${columns} />`}
    </${Page}>`;
}

function UsageFilters({ filters, keys, teams, models, onApply }) {
  const form = useForm(filters);
  const any = { value: '', label: 'any' };
  return html`
    <div class="panel">
      <${Form} form=${form} onSubmit=${onApply} submitLabel="Apply filters"
        extraActions=${html`<a class="button" href=${`#/usage?group_by=${filters.group_by}`}>Clear</a>`}>
        <div class="form-grid">
          <${Select} name="group_by" label="Group by" options=${GROUPS} />
          <${Select} name="key_id" label="Key" options=${[any, ...keys.map((k) => ({ value: k.id, label: k.name }))]} />
          <${Select} name="team_id" label="Team" options=${[any, ...teams.map((t) => ({ value: t.id, label: t.name || t.id }))]} />
          <${Select} name="model" label="Model" options=${[any, ...models.map((m) => ({ value: m.id, label: m.id }))]} />
          <${Input} name="start" label="From (UTC day, inclusive)" type="date" />
          <${Input} name="end" label="Until (UTC day, exclusive)" type="date" />
        </div>
      </${Form}>
    </div>`;
}

function csvCell(value) {
  const s = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The report as CSV (one row per group, then the totals), downloaded by the browser. */
function downloadCsv(data, keyName) {
  const header = [data.group_by === 'none' ? 'group' : data.group_by, ...(data.group_by === 'key' ? ['key_name'] : []), ...COLUMNS];
  const line = (key, row) => [key, ...(data.group_by === 'key' ? [keyName.get(key) ?? ''] : []), ...COLUMNS.map((c) => row[c])];
  const lines = [header, ...data.groups.map((g) => line(g.key, g)), line('total', data.totals)];
  const text = `${lines.map((l) => l.map(csvCell).join(',')).join('\r\n')}\r\n`;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `headrace-usage-${data.group_by}-${new Date().toISOString().slice(0, 10)}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
