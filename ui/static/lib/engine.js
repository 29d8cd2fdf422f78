// Shared pieces of the engine views (workflows, knowledge bases, operations, audit log):
// their styles (one <style> element, added once), JSON display, unix times, the
// problems of a validation message, and a JSON merge patch between two values.

import { html } from '../vendor/preact-htm.js';
import { fmtAgo, fmtDate } from './format.js';

const STYLE_ID = 'headrace-engine-styles';

const CSS = `
.engine-split { display: grid; gap: 1rem; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); align-items: start; }
.engine-split > * { min-width: 0; }
.dag-box { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: .5rem; overflow-x: auto; }
.dag-box svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
.dag-edge { fill: none; stroke: #8a94a3; stroke-width: 1.5; }
.dag-edge.barrier { stroke-dasharray: 2 4; stroke: #aab3c0; }
.dag-edge.jump { stroke-dasharray: 6 4; stroke: #7c3aed; }
.dag-edge.io { stroke: #c3cad4; }
.dag-arrow { fill: #8a94a3; }
.dag-arrow.jump { fill: #7c3aed; }
.dag-node rect { fill: #fff; stroke: #8a94a3; stroke-width: 1.5; }
.dag-node text { font-family: var(--font); fill: var(--text); }
.dag-node .dag-type { fill: var(--muted); font-size: 11px; }
.dag-node .dag-name { font-size: 13px; font-weight: 600; }
.dag-node.io rect { fill: var(--soft); stroke: #b8c0cc; stroke-dasharray: 4 3; }
.dag-node.conditional rect { fill: #f5f0ff; stroke: #7c3aed; }
.dag-node.running rect { fill: var(--warn-bg); stroke: #d97706; stroke-width: 2.5; }
.dag-node.ok rect { fill: var(--good-bg); stroke: var(--good); }
.dag-node.failed rect, .dag-node.invalid rect { fill: var(--bad-bg); stroke: var(--bad); stroke-width: 2.5; }
.dag-node.skipped rect { fill: #eef0f3; stroke: #9aa3af; stroke-dasharray: 4 3; }
.dag-node.skipped text { fill: var(--muted); }
.dag-legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; font-size: .8rem; color: var(--muted); margin: .35rem .25rem 0; }
.json-block { background: var(--soft); border: 1px solid var(--line); border-radius: var(--radius); padding: .5rem .75rem; margin: .25rem 0; max-height: 22rem; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--mono); font-size: .82rem; }
.problems { margin: .25rem 0 0; padding-left: 1.1rem; }
.problems li { color: var(--bad); font-size: .88rem; margin: .15rem 0; }
.problems code { color: var(--text); }
.problems button.link { font-size: .82rem; margin-left: .4rem; }
.run-steps { display: grid; gap: .5rem; margin: .5rem 0 1rem; }
.run-step { background: var(--panel); border: 1px solid var(--line); border-left: 4px solid #b8c0cc; border-radius: var(--radius); padding: .5rem .75rem; }
.run-step.running { border-left-color: #d97706; }
.run-step.ok { border-left-color: var(--good); }
.run-step.failed { border-left-color: var(--bad); }
.run-step.skipped { border-left-color: #9aa3af; opacity: .85; }
.run-step-head { display: flex; flex-wrap: wrap; gap: .35rem .75rem; align-items: baseline; }
.run-step-head strong { font-size: .98rem; }
.run-step-meta { color: var(--muted); font-size: .84rem; }
.run-step .delta { white-space: pre-wrap; background: var(--soft); border-radius: var(--radius); padding: .4rem .6rem; margin: .35rem 0 0; font-size: .9rem; }
.event-log { max-height: 16rem; overflow: auto; font-family: var(--mono); font-size: .8rem; background: var(--soft); border-radius: var(--radius); padding: .4rem .6rem; margin: .25rem 0; }
.event-log div { white-space: nowrap; }
.timeline { position: relative; height: .6rem; background: #eef0f3; border-radius: 999px; min-width: 6rem; }
.timeline > span { position: absolute; top: 0; bottom: 0; background: var(--accent); border-radius: 999px; min-width: 3px; }
.dropzone { display: grid; place-items: center; gap: .4rem; text-align: center; border: 2px dashed #b8c0cc; border-radius: var(--radius); background: var(--panel); padding: 1.25rem 1rem; }
.dropzone.over { border-color: var(--accent); background: var(--accent-soft); }
.dropzone input[type="file"] { max-width: 22rem; }
.upload-status { display: grid; gap: .3rem; margin: .5rem 0; }
.hits { display: grid; gap: .6rem; margin: .5rem 0; padding: 0; list-style: none; }
.hit { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: .6rem .8rem; }
.hit-head { display: flex; flex-wrap: wrap; gap: .3rem .9rem; align-items: center; font-size: .88rem; }
.hit-score { display: inline-flex; gap: .4rem; align-items: center; font-variant-numeric: tabular-nums; font-weight: 650; }
.hit-score .progress { width: 5rem; }
.hit p { white-space: pre-wrap; margin: .4rem 0; }
.chunks { display: grid; gap: .5rem; margin: .5rem 0; padding: 0; list-style: none; }
.chunks li { border: 1px solid var(--line); border-radius: var(--radius); padding: .5rem .7rem; background: var(--panel); }
.chunks pre { white-space: pre-wrap; margin: .3rem 0; font-size: .85rem; }
.ops-layout { display: grid; gap: 1rem; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); align-items: start; }
.ops-layout > * { min-width: 0; }
tr.selected td { background: var(--accent-soft); }
.small-facts { font-size: .9rem; }
@media (max-width: 1000px) {
  .engine-split, .ops-layout { grid-template-columns: minmax(0, 1fr); }
}
`;

/** Add the engine views' styles to the page (once). */
export function ensureStyles() {
  if (typeof document === 'undefined' || document.getElementById(STYLE_ID)) return;
  const style = document.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  document.head.append(style);
}

ensureStyles();

/** A JSON value, pretty-printed in a scrollable block. */
export function JsonBlock({ value, label }) {
  const textValue = typeof value === 'string' ? value : JSON.stringify(value ?? null, null, 2);
  return html`<pre class="json-block" aria-label=${label}>${textValue}</pre>`;
}

/** Long JSON folded behind a summary; short JSON shown as is. */
export function JsonDetails({ value, summary, open = false }) {
  const textValue = JSON.stringify(value ?? null, null, 2);
  if (textValue.length < 240 && !summary) return html`<${JsonBlock} value=${textValue} />`;
  return html`
    <details open=${open}>
      <summary>${summary || `JSON (${textValue.split('\n').length} lines)`}</summary>
      <${JsonBlock} value=${textValue} />
    </details>`;
}

/** Unix seconds (the operations API) as an ISO string for lib/format.js. */
export function unixIso(seconds) {
  return seconds === null || seconds === undefined ? null : new Date(seconds * 1000).toISOString();
}

export function UnixTime({ value }) {
  if (value === null || value === undefined) return '—';
  const iso = unixIso(value);
  return html`<time datetime=${iso} title=${fmtDate(iso)}>${fmtAgo(iso)}</time>`;
}

/** `0.8123` -> "0.812"; scores and similarities. */
export function fmtScore(value) {
  if (value === null || value === undefined) return '—';
  return Math.abs(value) >= 100 ? value.toFixed(0) : Number(value.toPrecision(3)).toString();
}

/**
 * The problems of a validation message: "invalid workflow: steps[0].x: bad; output: worse"
 * -> [{path: 'steps[0].x', message: 'bad'}, {path: 'output', message: 'worse'}].
 * A message without paths gives one problem at `param`.
 */
export function parseProblems(error) {
  if (!error) return [];
  const message = String(error.message || '');
  const body = message.replace(/^invalid [a-z ]+?:\s*/i, '');
  const problems = [];
  for (const part of body.split(/;\s+(?=[A-Za-z_][\w.[\]-]*: )/)) {
    const match = /^([A-Za-z_][\w.[\]-]*): ([\s\S]+)$/.exec(part.trim());
    if (match) problems.push({ path: match[1], message: match[2] });
  }
  if (!problems.length) problems.push({ path: error.param || null, message });
  return problems;
}

/** The step index a path such as `steps[2].depends_on` is about, or null. */
export function stepIndexOf(path) {
  const match = /^steps\[(\d+)\]/.exec(path || '');
  return match ? Number(match[1]) : null;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The JSON merge patch (RFC 7396) turning `before` into `after`: changed fields,
 * objects recursed into, removed fields as null. Arrays are replaced whole.
 */
export function mergePatch(before, after) {
  if (!isObject(before) || !isObject(after)) return after;
  const patch = {};
  for (const key of Object.keys(before)) {
    if (!(key in after)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(after)) {
    if (!(key in before)) {
      patch[key] = value;
    } else if (isObject(before[key]) && isObject(value)) {
      const inner = mergePatch(before[key], value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (!same(before[key], value)) {
      patch[key] = value;
    }
  }
  return patch;
}

/** A registry resource without what the server adds (object, version, times, counts). */
export function specOf(resource, extra = []) {
  const spec = { ...resource };
  for (const key of ['object', 'version', 'created_at', 'updated_at', ...extra]) delete spec[key];
  return spec;
}

/** A progress bar with its text for screen readers. */
export function ProgressBar({ fraction, label, kind = '' }) {
  const percent = Math.max(0, Math.min(100, Math.round((fraction ?? 0) * 100)));
  return html`
    <div class=${`progress ${kind}`} role="progressbar" aria-label=${label}
      aria-valuemin="0" aria-valuemax="100" aria-valuenow=${percent}>
      <span style=${{ width: `${percent}%` }}></span>
    </div>`;
}
