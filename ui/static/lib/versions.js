// The version history of an admin resource (`GET <path>/versions`), with a line diff
// between any two versions and an optional restore.
//
//   <${VersionHistory} path="/admin/prompts/greeting" field="content" key=${resource.version}
//     onRestore=${(spec) => api('PUT', '/admin/prompts/greeting', {body: spec})} />

import { html, useEffect, useMemo, useState } from '../vendor/preact-htm.js';
import { api } from './api.js';
import { Diff } from './diff.js';
import { fmtDate } from './format.js';
import { ConfirmButton, ErrorNotice, Loading, Table, toast, uid, useAsync } from './ui.js';

/** JSON with keys sorted, so two versions' texts line up. */
export function stableJson(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]));
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2);
}

export function VersionHistory({ path, field, onRestore }) {
  const { data, error, loading, reload } = useAsync(
    (signal) => api('GET', `${path}/versions`, { signal }), [path]);
  const versions = data?.data ?? [];
  const [pair, setPair] = useState(null);
  const ids = useMemo(() => [uid('from'), uid('to')], []);
  useEffect(() => {
    if (versions.length) {
      const last = versions[versions.length - 1].version;
      setPair([versions.length > 1 ? versions[versions.length - 2].version : last, last]);
    }
  }, [data]);

  if (loading && !data) return html`<${Loading} />`;
  if (error) return html`<${ErrorNotice} error=${error} retry=${reload} />`;
  const latest = versions[versions.length - 1]?.version;
  const textOf = (v) => {
    const spec = versions.find((x) => x.version === v)?.spec ?? {};
    return field ? String(spec[field] ?? '') : stableJson(spec);
  };

  async function restore(version) {
    const { spec } = versions.find((v) => v.version === version);
    const body = { ...spec };
    delete body.id;
    await onRestore(body);
    toast(`Version ${version} restored as a new version`);
  }

  return html`
    <div class="versions">
      <${Table} caption="Versions" rowKey="version" rows=${[...versions].reverse()}
        columns=${[
          { key: 'version', label: 'Version', render: (v) => (v.version === latest ? `${v.version} (current)` : v.version) },
          { key: 'created_at', label: 'Saved', render: (v) => fmtDate(v.created_at) },
          { key: 'changed_by', label: 'By', render: (v) => v.changed_by ?? '—' },
        ]}
        actions=${(v) => html`
          ${v.version > 1 && html`<button type="button"
            onClick=${() => setPair([v.version - 1, v.version])}>Compare with ${v.version - 1}</button>`}
          ${onRestore && v.version !== latest && html`
            <${ConfirmButton} className="" question=${`Restore version ${v.version}?`}
              confirmLabel="Restore" onConfirm=${() => restore(v.version)}>Restore</${ConfirmButton}>`}`} />
      ${pair && versions.length > 1 && html`
        <div class="compare">
          <div class="compare-pick">
            ${['From', 'To'].map((label, i) => html`
              <label for=${ids[i]}>${label} version</label>
              <select id=${ids[i]} value=${pair[i]}
                onChange=${(e) => setPair(i ? [pair[0], +e.currentTarget.value] : [+e.currentTarget.value, pair[1]])}>
                ${versions.map((v) => html`<option value=${v.version}>${v.version}</option>`)}
              </select>`)}
          </div>
          <${Diff} before=${textOf(pair[0])} after=${textOf(pair[1])} />
        </div>`}
    </div>`;
}
