// Dashboard: request volume, error rate, latency and cost over time (GET /admin/usage
// grouped by hour or day), top models and keys, open circuit breakers (each model's
// GET /admin/models/<id>/health) and degraded mode (GET /ready).

import { html, useMemo } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { TimeChart } from '../lib/chart.js';
import { fmtMs, fmtNumber, fmtPercent, fmtUsd, utcDay } from '../lib/format.js';
import {
  ErrorNotice, Loading, Notice, Page, StatusBadge, Table, Tabs, link, useAsync,
} from '../lib/ui.js';

const RANGES = [
  { id: '24h', label: 'Last 24 hours', group: 'hour', buckets: 24 },
  { id: '7d', label: 'Last 7 days', group: 'day', buckets: 7 },
  { id: '30d', label: 'Last 30 days', group: 'day', buckets: 30 },
];
const MAX_MODELS_CHECKED = 100;

/** The bucket keys of a range, oldest first, as the usage API names them. */
function buckets(range, now = new Date()) {
  const keys = [];
  for (let i = range.buckets - 1; i >= 0; i--) {
    if (range.group === 'hour') {
      const t = new Date(now.getTime() - i * 3600_000);
      keys.push(`${t.toISOString().slice(0, 13)}:00:00Z`);
    } else {
      keys.push(utcDay(new Date(now.getTime() - i * 86400_000)));
    }
  }
  return keys;
}

export default function DashboardView({ query, navigate }) {
  const range = RANGES.find((r) => r.id === query.get('range')) || RANGES[0];
  const keys = useMemo(() => buckets(range), [range.id]);
  const start = keys[0];
  const series = useAsync((signal) => api('GET', '/admin/usage', { query: { group_by: range.group, start }, signal }), [range.id]);
  const byModel = useAsync((signal) => api('GET', '/admin/usage', { query: { group_by: 'model', start }, signal }), [range.id]);
  const byKey = useAsync((signal) => api('GET', '/admin/usage', { query: { group_by: 'key', start }, signal }), [range.id]);

  return html`
    <${Page} title="Dashboard" subtitle="Traffic, errors, latency and spend through the gateway.">
      <${Health} />
      <${Tabs} label="Time range" tabs=${RANGES} current=${range.id}
        onChange=${(id) => navigate(`#/dashboard?range=${id}`, { replace: true })} />
      <div role="tabpanel" aria-labelledby=${`tab-${range.id}`}>
        <${ErrorNotice} error=${series.error} retry=${series.reload} />
        ${series.loading && !series.data ? html`<${Loading} />`
          : series.data && html`<${Charts} report=${series.data} keys=${keys} range=${range} />`}
        <div class="grid">
          <${Top} title="Top models" report=${byModel} linkTo="models" />
          <${Top} title="Top keys" report=${byKey} linkTo="keys" names />
        </div>
      </div>
    </${Page}>`;
}

function Charts({ report, keys, range }) {
  const data = useMemo(() => {
    const found = new Map(report.groups.map((g) => [g.key, g]));
    const rows = keys.map((k) => found.get(k));
    const times = keys.map((k) => Date.parse(range.group === 'hour' ? k : `${k}T00:00:00Z`) / 1000);
    return {
      times,
      requests: rows.map((g) => g?.requests ?? 0),
      errorRate: rows.map((g) => (g?.requests ? (100 * g.errors) / g.requests : null)),
      latency: rows.map((g) => g?.avg_latency_ms ?? null),
      cost: rows.map((g) => g?.cost_usd ?? 0),
    };
  }, [report, keys]);
  const t = report.totals;
  const line = (label, values, color) => [{ label, values, color }];
  const charts = useMemo(() => ({
    requests: line('Requests', data.requests, '#2563eb'),
    errorRate: line('Error rate', data.errorRate, '#dc2626'),
    latency: line('Latency', data.latency, '#059669'),
    cost: line('Cost', data.cost, '#d97706'),
  }), [data]);
  return html`
    <div class="cards" aria-label="Totals">
      <div class="card"><div class="label">Requests</div><div class="value">${fmtNumber(t.requests)}</div></div>
      <div class="card"><div class="label">Error rate</div><div class="value">${fmtPercent(t.requests ? (100 * t.errors) / t.requests : null)}</div></div>
      <div class="card"><div class="label">Avg latency</div><div class="value">${fmtMs(t.avg_latency_ms)}</div></div>
      <div class="card"><div class="label">Cost</div><div class="value">${fmtUsd(t.cost_usd)}</div></div>
    </div>
    <div class="grid charts">
      <${TimeChart} title=${`Requests per ${range.group}`} times=${data.times}
        series=${charts.requests} format=${fmtNumber} />
      <${TimeChart} title="Error rate" times=${data.times}
        series=${charts.errorRate} format=${fmtPercent} />
      <${TimeChart} title="Average latency" times=${data.times}
        series=${charts.latency} format=${fmtMs} />
      <${TimeChart} title="Cost" times=${data.times}
        series=${charts.cost} format=${fmtUsd} />
    </div>`;
}

function Top({ title, report, linkTo, names = false }) {
  const keys = useAsync((signal) => (names ? fetchAll('/admin/api-keys', { signal }) : Promise.resolve([])), [names]);
  const nameOf = new Map((keys.data ?? []).map((k) => [k.id, k.name]));
  const rows = [...(report.data?.groups ?? [])].sort((a, b) => b.requests - a.requests).slice(0, 5);
  return html`
    <div>
      <h2>${title}</h2>
      <${ErrorNotice} error=${report.error} retry=${report.reload} />
      ${report.loading && !report.data ? html`<${Loading} />` : report.data && html`<${Table} caption=${title} rows=${rows} rowKey=${(r) => r.key ?? '__none'} empty="No traffic in this period."
        columns=${[
          { key: 'key', label: linkTo === 'keys' ? 'Key' : 'Model', render: (r) => (r.key === null ? '(none)'
            : html`<a href=${link(linkTo, r.key)}>${nameOf.get(r.key) ?? r.key}</a>`) },
          { key: 'requests', label: 'Requests', numeric: true, render: (r) => fmtNumber(r.requests) },
          { key: 'errors', label: 'Errors', numeric: true, render: (r) => fmtNumber(r.errors) },
          { key: 'cost_usd', label: 'Cost', numeric: true, render: (r) => fmtUsd(r.cost_usd) },
        ]} />`}
    </div>`;
}

/** Degraded mode and failing checks from /ready, and every circuit that is not closed. */
function Health() {
  const ready = useAsync(async (signal) => {
    // `headrace ui` (the console alone, proxying /admin and /v1) answers /health itself
    // with mode "console" and has no /ready of the API server to show.
    const health = await (await fetch('/health', { signal })).json();
    if (health.mode === 'console') return { proxied: true, checks: {} };
    return (await fetch('/ready', { signal })).json();
  });
  const circuits = useAsync(async (signal) => {
    const models = (await fetchAll('/admin/models', { signal })).slice(0, MAX_MODELS_CHECKED);
    const healths = await Promise.all(models.map((m) => api('GET', `/admin/models/${encodeURIComponent(m.id)}/health`, { signal })
      .catch(() => null)));
    const deployments = healths.filter(Boolean).flatMap((h) => h.deployments.map((d) => ({ ...d, model: h.id })));
    return { checked: deployments.length, open: deployments.filter((d) => d.circuit !== 'closed') };
  });
  const checks = ready.data?.checks ?? {};
  const problems = Object.entries(checks).filter(([, c]) => c.status === 'degraded' || c.status === 'failed');
  return html`
    <div class="panel">
      <h2>Health</h2>
      ${ready.error && html`<${Notice} kind="warn">Readiness could not be read: ${ready.error.message}</${Notice}>`}
      ${problems.map(([name, c]) => html`
        <${Notice} kind=${c.status === 'failed' ? 'error' : 'warn'} title=${`${name}: ${c.status}.`}>
          ${c.status === 'degraded' ? 'Running in degraded mode: limits, budgets and breakers are kept in this process only. ' : ''}${c.detail || ''}
        </${Notice}>`)}
      ${ready.data?.proxied && html`<p class="muted">Served by <code>headrace ui</code>: the API server's readiness is not shown here.</p>`}
      ${ready.data && !ready.data.proxied && problems.length === 0 && html`<p>Ready: ${Object.entries(checks).map(([name, c]) => `${name} ${c.status}`).join(', ')}.</p>`}
      ${circuits.loading && !circuits.data && html`<${Loading} label="Checking circuit breakers…" />`}
      <${ErrorNotice} error=${circuits.error} retry=${circuits.reload} />
      ${circuits.data && (circuits.data.checked === 0
        ? html`<p class="muted">No circuit breakers yet: they come with the first model.</p>`
        : circuits.data.open.length === 0
        ? html`<p>All ${circuits.data.checked} circuit breakers are closed.</p>`
        : html`
          <${Notice} kind="error" title="Open circuit breakers:">requests to these deployments fail fast or fall back.</${Notice}>
          <${Table} caption="Open circuit breakers" rowKey="key" rows=${circuits.data.open} columns=${[
            { key: 'key', label: 'Deployment', render: (d) => html`<a href=${link('models', d.model)}>${d.key}</a>` },
            { key: 'circuit', label: 'Circuit', render: (d) => html`<${StatusBadge} status=${d.circuit} />` },
            { key: 'in_flight', label: 'In flight', numeric: true },
          ]} />`)}
    </div>`;
}
