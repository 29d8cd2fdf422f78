// Shared components of the console. Views import everything from here.

import {
  html, useCallback, useEffect, useMemo, useRef, useState,
} from '../vendor/preact-htm.js';

export {
  Form, Field, FieldError, Input, TextArea, Select, Check, JsonEditor, JsonInput, useForm,
  useField, text, num, json, list, pretty, compact, blank, uid,
} from './form.js';

/** `#/models/gpt-4o`: a hash link to a route and its path segments. */
export function link(name, ...path) {
  return `#/${[name, ...path.map((part) => encodeURIComponent(part))].join('/')}`;
}

const sameDeps = (a, b) => a !== null && a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

/**
 * Load data: `const {data, error, loading, reload} = useAsync((signal) => api(...), [deps])`.
 *
 * When `deps` change (another resource: `#/prompts/a` -> `#/prompts/b`), what was loaded
 * for the old ones is not returned, not even for one render: `data` is undefined and
 * `loading` true until the new answer arrives, so a view never shows (or builds a form
 * from) the previous resource. `reload()` keeps the data while it loads again. Pass
 * `{keep: true}` when the deps only refresh or page the same thing (a polling tick, an
 * offset) and the old data may stay on screen meanwhile.
 */
export function useAsync(load, deps = [], { keep = false } = {}) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true, deps: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((old) => ({ ...old, loading: true, error: null }));
    load(controller.signal).then(
      (data) => !controller.signal.aborted && setState({ data, error: null, loading: false, deps }),
      (error) => !controller.signal.aborted && error?.name !== 'AbortError'
        && setState({ data: undefined, error, loading: false, deps }),
    );
    return () => controller.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  if (!keep && !sameDeps(state.deps, deps)) {
    return { data: undefined, error: null, loading: true, reload };
  }
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** A view's frame: the heading (focused after navigation), actions and content. */
export function Page({ title, subtitle, actions, back, children }) {
  const heading = useRef();
  useEffect(() => {
    document.title = `${title} · Headrace`;
  }, [title]);
  useEffect(() => {
    // After a link of the sidebar (or none) was used; not when the keyboard is on the
    // menu button while the view loads.
    const active = document.activeElement;
    if (!active || active === document.body || (active.matches('a') && active.closest('nav'))) {
      heading.current?.focus({ preventScroll: true });
    }
  }, []);
  return html`
    <section class="page">
      <header class="page-head">
        <div>
          ${back && html`<a class="back" href=${back.href}>← ${back.label}</a>`}
          <h1 tabindex="-1" ref=${heading}>${title}</h1>
          ${subtitle && html`<p class="muted">${subtitle}</p>`}
        </div>
        ${actions && html`<div class="page-actions">${actions}</div>`}
      </header>
      ${children}
    </section>`;
}

export function Loading({ label = 'Loading…' }) {
  return html`<p class="loading" role="status">${label}</p>`;
}

/** An inline message: kind info, warn, error or ok. */
export function Notice({ kind = 'info', title, children }) {
  return html`
    <div class=${`notice ${kind}`} role=${kind === 'error' ? 'alert' : undefined}>
      ${title && html`<strong>${title} </strong>`}${children}
    </div>`;
}

export function ErrorNotice({ error, retry }) {
  if (!error) return null;
  return html`<${Notice} kind="error">
    ${error.message}
    ${retry && html` <button type="button" class="link" onClick=${retry}>Try again</button>`}
  </${Notice}>`;
}

/**
 * columns: [{key, label, render(row), numeric}]; rows: objects; actions(row): buttons;
 * rowClass(row): a class for the row.
 */
export function Table({
  columns, rows, rowKey = 'id', empty = 'Nothing here yet.', actions, caption, rowClass,
}) {
  return html`
    <div class="table-wrap">
      <table>
        ${caption && html`<caption class="sr-only">${caption}</caption>`}
        <thead><tr>
          ${columns.map((c) => html`<th scope="col" class=${c.numeric ? 'num' : ''}>${c.label}</th>`)}
          ${actions && html`<th scope="col"><span class="sr-only">Actions</span></th>`}
        </tr></thead>
        <tbody>
          ${rows.length === 0 && html`
            <tr><td class="empty" colspan=${columns.length + (actions ? 1 : 0)}>${empty}</td></tr>`}
          ${rows.map((row, index) => html`
            <tr key=${typeof rowKey === 'function' ? rowKey(row) : row[rowKey] ?? index}
              class=${rowClass ? rowClass(row) : undefined}>
              ${columns.map((c) => html`
                <td class=${c.numeric ? 'num' : ''} data-label=${c.label}>
                  ${c.render ? c.render(row) : row[c.key] ?? '—'}
                </td>`)}
              ${actions && html`<td class="row-actions">${actions(row)}</td>`}
            </tr>`)}
        </tbody>
      </table>
    </div>`;
}

export function SearchBox({ value, onInput, label = 'Search', placeholder = 'Search' }) {
  const id = useMemo(() => `search-${Math.random().toString(36).slice(2)}`, []);
  return html`
    <div class="search">
      <label for=${id} class="sr-only">${label}</label>
      <input id=${id} type="search" placeholder=${placeholder} value=${value}
        onInput=${(e) => onInput(e.currentTarget.value)} />
    </div>`;
}

/** Rows matching `query` in any of `fields` (case-insensitive). */
export function search(rows, query, fields) {
  const needle = query.trim().toLowerCase();
  if (!needle) return rows;
  return rows.filter((row) => fields.some((f) => {
    const value = typeof f === 'function' ? f(row) : row[f];
    return value !== null && value !== undefined && String(value).toLowerCase().includes(needle);
  }));
}

export function Pager({ total, limit, offset, onChange }) {
  if (total <= limit && offset === 0) return null;
  const last = Math.min(offset + limit, total);
  return html`
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled=${offset === 0}
        onClick=${() => onChange(Math.max(0, offset - limit))}>Previous</button>
      <span>${total ? offset + 1 : 0}–${last} of ${total}</span>
      <button type="button" disabled=${last >= total}
        onClick=${() => onChange(offset + limit)}>Next</button>
    </nav>`;
}

/** Client-side paging: `const page = usePage(rows, 25)` -> {rows, pager props}. */
export function usePage(rows, limit = 25) {
  const [offset, setOffset] = useState(0);
  const start = offset >= rows.length ? 0 : offset;
  return {
    rows: rows.slice(start, start + limit),
    pager: { total: rows.length, limit, offset: start, onChange: setOffset },
  };
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), '
  + 'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** A modal dialog: Esc and the close button call onClose; Tab stays inside. */
export function Modal({ title, onClose, children, wide = false }) {
  const dialog = useRef();
  const titleId = useMemo(() => `modal-${Math.random().toString(36).slice(2)}`, []);
  useEffect(() => {
    const element = dialog.current;
    const previous = document.activeElement;
    element.showModal();
    const first = element.querySelector(`.modal-body :is(${FOCUSABLE})`)
      || element.querySelector(FOCUSABLE);
    first?.focus();
    return () => {
      if (element.open) element.close();
      if (previous && document.contains(previous)) previous.focus();
    };
  }, []);
  function onKeyDown(event) {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      onClose();
    } else if (event.key === 'Tab') {
      const items = [...dialog.current.querySelectorAll(FOCUSABLE)];
      if (!items.length) return;
      const [first, last] = [items[0], items[items.length - 1]];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
  }
  return html`
    <dialog ref=${dialog} class=${wide ? 'modal wide' : 'modal'} aria-labelledby=${titleId}
      onKeyDown=${onKeyDown} onCancel=${(e) => { e.preventDefault(); onClose(); }}>
      <header class="modal-head">
        <h2 id=${titleId}>${title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick=${onClose}>×</button>
      </header>
      <div class="modal-body">${children}</div>
    </dialog>`;
}

// --- toasts --------------------------------------------------------------------------

let toasts = [];
let nextToast = 1;
const listeners = new Set();

/** Show a short message in the corner: kind info, ok or error. */
export function toast(message, kind = 'ok', ms = 5000) {
  const id = nextToast++;
  toasts = [...toasts, { id, message, kind }];
  listeners.forEach((fn) => fn(toasts));
  setTimeout(() => {
    toasts = toasts.filter((t) => t.id !== id);
    listeners.forEach((fn) => fn(toasts));
  }, ms);
}

export function Toasts() {
  const [list, setList] = useState(toasts);
  useEffect(() => {
    listeners.add(setList);
    return () => listeners.delete(setList);
  }, []);
  return html`
    <div class="toasts" role="status" aria-live="polite">
      ${list.map((t) => html`<div key=${t.id} class=${`toast ${t.kind}`}>${t.message}</div>`)}
    </div>`;
}

// --- buttons -------------------------------------------------------------------------

/** A button that asks once more before it acts; errors become a toast. */
export function ConfirmButton({
  onConfirm, children, question = 'Are you sure?', confirmLabel = 'Yes', className = 'danger',
}) {
  const [state, setState] = useState('idle');
  const yes = useRef();
  const button = useRef();
  useEffect(() => {
    if (state === 'asking') yes.current?.focus();
  }, [state]);
  function cancel() {
    setState('idle');
    setTimeout(() => button.current?.focus());
  }
  async function confirm() {
    setState('busy');
    try {
      await onConfirm();
    } catch (error) {
      toast(error.message, 'error');
    }
    setState('idle');
  }
  if (state === 'idle') {
    return html`<button type="button" ref=${button} class=${className}
      onClick=${() => setState('asking')}>${children}</button>`;
  }
  return html`
    <span class="confirm" role="group" aria-label=${question}
      onKeyDown=${(e) => {
        if (e.key !== 'Escape') return;
        e.preventDefault(); // not the dialog around it: only this question is dismissed
        e.stopPropagation();
        cancel();
      }}>
      <span>${question}</span>
      <button type="button" ref=${yes} class=${className} disabled=${state === 'busy'}
        onClick=${confirm}>${confirmLabel}</button>
      <button type="button" onClick=${cancel}>Cancel</button>
    </span>`;
}

export function CopyButton({ text: value, label = 'Copy' }) {
  const [done, setDone] = useState(false);
  async function copy() {
    let ok = false;
    try {
      await navigator.clipboard.writeText(value);
      ok = true;
    } catch {
      const area = document.createElement('textarea');
      area.value = value;
      area.setAttribute('readonly', '');
      area.style.position = 'fixed';
      area.style.opacity = '0';
      document.body.append(area);
      area.select();
      ok = document.execCommand('copy');
      area.remove();
    }
    if (ok) {
      setDone(true);
      setTimeout(() => setDone(false), 2000);
    } else {
      toast('Could not copy: select the text and copy it yourself', 'error');
    }
  }
  return html`<button type="button" onClick=${copy}>${done ? 'Copied' : label}</button>`;
}

const STATUS_KIND = {
  ok: 'good', active: 'good', closed: 'good', healthy: 'good', ready: 'good', enabled: 'good',
  succeeded: 'good', completed: 'good',
  suspended: 'warn', half_open: 'warn', soft_limit: 'warn', degraded: 'warn', running: 'warn',
  pending: 'warn', queued: 'warn',
  revoked: 'bad', open: 'bad', exhausted: 'bad', failed: 'bad', expired: 'bad', disabled: 'bad',
  error: 'bad', cancelled: 'bad',
};

export function StatusBadge({ status, label }) {
  const kind = STATUS_KIND[status] || 'neutral';
  return html`<span class=${`badge ${kind}`}>${label ?? String(status).replace('_', ' ')}</span>`;
}

/** Tabs: [{id, label}]; arrow keys move between them. The panel is the caller's. */
export function Tabs({ tabs, current, onChange, label = 'Sections' }) {
  function onKeyDown(event) {
    const index = tabs.findIndex((t) => t.id === current);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = tabs[(index + step + tabs.length) % tabs.length];
    onChange(next.id);
    setTimeout(() => document.getElementById(`tab-${next.id}`)?.focus());
  }
  return html`
    <div class="tabs" role="tablist" aria-label=${label} onKeyDown=${onKeyDown}>
      ${tabs.map((t) => html`
        <button type="button" role="tab" id=${`tab-${t.id}`} aria-selected=${t.id === current ? 'true' : 'false'}
          tabindex=${t.id === current ? 0 : -1} onClick=${() => onChange(t.id)}>${t.label}</button>`)}
    </div>`;
}
