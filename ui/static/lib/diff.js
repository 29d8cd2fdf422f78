// A line diff (longest common subsequence) and its display.

import { html } from '../vendor/preact-htm.js';

const MAX_CELLS = 4_000_000;

/** [{op: ' ' | '-' | '+', line}] turning `before` into `after`, or null if too large. */
export function diffLines(before, after) {
  const a = before.split('\n');
  const b = after.split('\n');
  // Trim the common head and tail so the table covers only the changed middle.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head
         && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  if ((x.length + 1) * (y.length + 1) > MAX_CELLS) return null;
  const width = y.length + 1;
  const table = new Uint32Array((x.length + 1) * width);
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      table[i * width + j] = x[i] === y[j] ? table[(i + 1) * width + j + 1] + 1
        : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  const out = a.slice(0, head).map((line) => ({ op: ' ', line }));
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push({ op: ' ', line: x[i] });
      i++;
      j++;
    } else if (i < x.length && (j === y.length
               || table[(i + 1) * width + j] >= table[i * width + j + 1])) {
      // At a change, what goes comes before what replaces it (as in `diff -u`).
      out.push({ op: '-', line: x[i++] });
    } else {
      out.push({ op: '+', line: y[j++] });
    }
  }
  return out.concat(a.slice(a.length - tail).map((line) => ({ op: ' ', line })));
}

/** The diff as a listing; unchanged runs longer than 2 * context lines are folded. */
export function Diff({ before, after, context = 3 }) {
  const lines = diffLines(before, after);
  if (lines === null) return html`<p class="muted">Too large to compare line by line.</p>`;
  if (lines.every((l) => l.op === ' ')) return html`<p class="muted">No differences.</p>`;
  const shown = [];
  let run = [];
  const flush = (atEnd) => {
    const keepHead = shown.length ? context : 0;
    const keepTail = atEnd ? 0 : context;
    if (run.length > keepHead + keepTail + 1) {
      shown.push(...run.slice(0, keepHead));
      shown.push({ op: '…', line: `${run.length - keepHead - keepTail} unchanged lines` });
      shown.push(...run.slice(run.length - keepTail));
    } else {
      shown.push(...run);
    }
    run = [];
  };
  for (const line of lines) {
    if (line.op === ' ') {
      run.push(line);
    } else {
      flush(false);
      shown.push(line);
    }
  }
  flush(true);
  const label = { '+': 'added', '-': 'removed', ' ': '', '…': '' };
  return html`
    <pre class="diff">${shown.map((l) => html`<div class=${`diff-line ${diffClass(l.op)}`}><span class="diff-op" aria-hidden="true">${l.op}</span>${label[l.op] && html`<span class="sr-only">${label[l.op]}: </span>`}${l.line || ' '}</div>`)}</pre>`;
}

function diffClass(op) {
  return { '+': 'add', '-': 'del', '…': 'fold' }[op] || '';
}
