// Forms whose errors land next to the field they concern.
//
//   const form = useForm({id: '', provider: 'openai'});
//   <${Form} form=${form} onSubmit=${async (values) => api('POST', '/admin/models', {body})}>
//     <${Input} name="id" label="Id" required />
//   </${Form}>
//
// Values are kept flat by field name ('pricing.input_cost_per_token' is one key);
// the view builds the request body. When `onSubmit` throws an ApiError (or a
// FieldError), the field whose name equals the error's `param` (or is its closest
// parent: `deployments` for `deployments[0].model`) shows the message and gets the
// focus; an error no field claims is shown above the buttons.

import {
  html, createContext, useCallback, useContext, useEffect, useMemo, useRef, useState,
} from '../vendor/preact-htm.js';

const FormContext = createContext(null);
let counter = 0;
export const uid = (prefix = 'f') => `${prefix}-${++counter}`;

// A saved form is often replaced by a fresh one (keyed by the new version, once the
// resource is read again), which drops the focus on the page's body. The new form's
// submit button takes it back, so the keyboard stays where it was.
const HANDOVER_MS = 10_000;
let handover = null; // {label, until}

/** A client-side validation error for one field, shown like the server's. */
export class FieldError extends Error {
  constructor(param, message) {
    super(message);
    this.name = 'FieldError';
    this.param = param;
  }
}

export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const set = useCallback((name, value) => setValues((old) => ({ ...old, [name]: value })), []);
  return { values, set, reset: setValues };
}

/** The registered field that should show an error about `param`. */
export function claim(param, names) {
  if (!param) return null;
  if (names.has(param)) return param;
  let best = null;
  for (const name of names) {
    if ((param.startsWith(`${name}.`) || param.startsWith(`${name}[`))
        && (!best || name.length > best.length)) best = name;
  }
  if (best) return best;
  for (const name of names) {
    if (name.startsWith(`${param}.`) || name.startsWith(`${param}[`)) return name;
  }
  return null;
}

export function Form({
  form, onSubmit, submitLabel = 'Save', children, extraActions = null, className = '',
}) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const names = useRef(new Set());
  const submitButton = useRef();
  useEffect(() => {
    if (!handover || handover.label !== submitLabel) return;
    const { until } = handover;
    handover = null;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (lost && Date.now() < until) submitButton.current?.focus();
  }, []);
  const claimed = useMemo(() => (error ? claim(error.param, names.current) : null), [error]);

  async function submit(event) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await onSubmit(form.values);
      handover = { label: submitLabel, until: Date.now() + HANDOVER_MS };
    } catch (caught) {
      if (caught?.name !== 'AbortError') setError(caught);
    } finally {
      setBusy(false);
    }
  }

  const context = { form, error, claimed, names: names.current };
  return html`
    <${FormContext.Provider} value=${context}>
      <form class=${`form ${className}`} onSubmit=${submit} noValidate>
        ${children}
        ${error && !claimed && html`
          <p class="form-error" role="alert">${error.message}</p>`}
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy} ref=${submitButton}>
            ${busy ? 'Saving…' : submitLabel}
          </button>
          ${extraActions}
        </div>
      </form>
    </${FormContext.Provider}>`;
}

/** A form field for custom controls: `{id, value, set, error, describedBy}`. */
export function useField(name) {
  const context = useContext(FormContext);
  const id = useMemo(() => uid('field'), []);
  useEffect(() => {
    context.names.add(name);
    return () => context.names.delete(name);
  }, [name]);
  const error = context.claimed === name ? context.error : null;
  useEffect(() => {
    if (!error) return;
    const control = document.getElementById(id);
    control?.closest('details')?.setAttribute('open', '');
    control?.focus();
  }, [error]);
  return {
    id,
    value: context.form.values[name],
    set: (value) => context.form.set(name, value),
    error,
    describedBy: `${id}-hint ${id}-error`,
  };
}

/** Label, control (the child function gets the control's props), hint and error. */
export function Field({ field, label, hint, children, className = '' }) {
  return html`
    <div class=${`field ${field.error ? 'has-error' : ''} ${className}`}>
      <label for=${field.id}>${label}</label>
      ${children}
      ${hint && html`<p class="hint" id=${`${field.id}-hint`}>${hint}</p>`}
      ${field.error && html`
        <p class="field-error" id=${`${field.id}-error`}>${field.error.message}</p>`}
    </div>`;
}

function controlProps(field, rest) {
  return {
    id: field.id,
    'aria-invalid': field.error ? 'true' : undefined,
    'aria-describedby': field.describedBy,
    ...rest,
  };
}

export function Input({ name, label, hint, type = 'text', ...rest }) {
  const field = useField(name);
  return html`<${Field} field=${field} label=${label} hint=${hint}>
    <input ...${controlProps(field, rest)} name=${name} type=${type}
      value=${field.value ?? ''} onInput=${(e) => field.set(e.currentTarget.value)} />
  </${Field}>`;
}

export function TextArea({ name, label, hint, rows = 4, ...rest }) {
  const field = useField(name);
  return html`<${Field} field=${field} label=${label} hint=${hint}>
    <textarea ...${controlProps(field, rest)} name=${name} rows=${rows}
      value=${field.value ?? ''} onInput=${(e) => field.set(e.currentTarget.value)} />
  </${Field}>`;
}

/** options: values, or {value, label}. */
export function Select({ name, label, hint, options, ...rest }) {
  const field = useField(name);
  return html`<${Field} field=${field} label=${label} hint=${hint}>
    <select ...${controlProps(field, rest)} name=${name} value=${field.value ?? ''}
      onChange=${(e) => field.set(e.currentTarget.value)}>
      ${options.map((option) => {
        const { value, label: text } = typeof option === 'object' ? option : { value: option };
        return html`<option value=${value}>${text ?? value}</option>`;
      })}
    </select>
  </${Field}>`;
}

export function Check({ name, label, hint, ...rest }) {
  const field = useField(name);
  return html`
    <div class=${`field check ${field.error ? 'has-error' : ''}`}>
      <input ...${controlProps(field, rest)} name=${name} type="checkbox"
        checked=${Boolean(field.value)} onChange=${(e) => field.set(e.currentTarget.checked)} />
      <label for=${field.id}>${label}</label>
      ${hint && html`<p class="hint" id=${`${field.id}-hint`}>${hint}</p>`}
      ${field.error && html`
        <p class="field-error" id=${`${field.id}-error`}>${field.error.message}</p>`}
    </div>`;
}

/** A textarea checked as JSON while typing; the form value stays the text. */
export function JsonEditor({ id, value, onInput, rows = 6, describedBy, invalid }) {
  const problem = jsonProblem(value);
  return html`
    <textarea id=${id} class="code" rows=${rows} spellcheck="false" value=${value ?? ''}
      aria-invalid=${invalid || problem ? 'true' : undefined}
      aria-describedby=${`${describedBy || ''} ${id}-json`}
      onInput=${(e) => onInput(e.currentTarget.value)} />
    ${problem && html`<p class="field-error" id=${`${id}-json`}>Not valid JSON: ${problem}</p>`}`;
}

export function JsonInput({ name, label, hint, rows }) {
  const field = useField(name);
  return html`<${Field} field=${field} label=${label} hint=${hint}>
    <${JsonEditor} id=${field.id} value=${field.value} onInput=${field.set} rows=${rows}
      describedBy=${field.describedBy} invalid=${Boolean(field.error)} />
  </${Field}>`;
}

function jsonProblem(text) {
  if (!text || !text.trim()) return null;
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    return error.message;
  }
}

// --- reading values into a request body ------------------------------------------------

export const blank = (value) => value === undefined || value === null || String(value).trim() === '';

/** The text, or null when blank. */
export function text(values, name) {
  return blank(values[name]) ? null : String(values[name]).trim();
}

/** A number, or null when blank; a FieldError when it is not one. */
export function num(values, name, { integer = false, scale = 1 } = {}) {
  if (blank(values[name])) return null;
  const value = Number(values[name]);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new FieldError(name, integer ? 'Enter a whole number' : 'Enter a number');
  }
  return value * scale;
}

/** Parsed JSON, or `fallback` when blank; a FieldError when it does not parse. */
export function json(values, name, fallback = null) {
  if (blank(values[name])) return fallback;
  try {
    return JSON.parse(values[name]);
  } catch (error) {
    throw new FieldError(name, `Not valid JSON: ${error.message}`);
  }
}

/** Comma- or newline-separated text as a list. */
export function list(values, name) {
  return String(values[name] ?? '').split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

export const pretty = (value) => JSON.stringify(value ?? null, null, 2);

/** Drop null fields (for a create body, where null is not the same as absent). */
export function compact(body) {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null));
}
