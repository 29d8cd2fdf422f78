// A form generated from a JSON Schema (a workflow's `input_schema`): one control per
// property — text, number, whole number, checkbox, a select for `enum`, one line per
// item for arrays of strings or numbers, and a JSON box for anything else.
//
//   const fields = schemaFields(schema);
//   const [values, setValues] = useState(() => initialValues(fields));
//   <${SchemaFields} fields=${fields} values=${values} onChange=${...} problems=${{topic: '...'}} />
//   const body = inputBody(fields, values);  // throws InputProblems naming the fields

import { html, useMemo } from '../vendor/preact-htm.js';
import { uid } from './ui.js';

const typeOf = (schema) => {
  const type = schema?.type;
  return Array.isArray(type) ? type.find((t) => t !== 'null') : type;
};

function kindOf(schema) {
  if (Array.isArray(schema?.enum) && schema.enum.length) return 'enum';
  if (schema && 'const' in schema) return 'enum';
  const type = typeOf(schema);
  if (type === 'boolean') return 'boolean';
  if (type === 'integer') return 'integer';
  if (type === 'number') return 'number';
  if (type === 'string') return 'string';
  if (type === 'array') {
    const item = typeOf(schema.items);
    if (item === 'string' || item === 'number' || item === 'integer') return 'list';
  }
  return 'json';
}

/** The fields of an object schema, in property order; [] when it has none. */
export function schemaFields(schema) {
  const properties = schema && typeof schema === 'object' ? schema.properties : null;
  if (!properties || typeof properties !== 'object') return [];
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  return Object.entries(properties).map(([name, property]) => {
    const prop = property && typeof property === 'object' ? property : {};
    const kind = kindOf(prop);
    const options = kind === 'enum' ? (prop.enum ?? [prop.const]) : null;
    return {
      name, kind, options, required: required.has(name), schema: prop,
      label: prop.title || name, itemType: kind === 'list' ? typeOf(prop.items) : null,
    };
  });
}

function describe(field) {
  const s = field.schema;
  const parts = [];
  if (s.description) parts.push(s.description);
  if (field.kind === 'list') parts.push(`One ${field.itemType === 'string' ? 'value' : 'number'} per line.`);
  if (field.kind === 'json') parts.push('JSON.');
  if (s.minimum !== undefined) parts.push(`At least ${s.minimum}.`);
  if (s.maximum !== undefined) parts.push(`At most ${s.maximum}.`);
  if (s.minLength > 1) parts.push(`At least ${s.minLength} characters.`);
  if (s.maxLength !== undefined) parts.push(`At most ${s.maxLength} characters.`);
  if (s.default !== undefined && field.kind !== 'boolean') parts.push(`Default: ${JSON.stringify(s.default)}.`);
  return parts.join(' ');
}

/** Form values (strings, and booleans for checkboxes) from the schema's defaults. */
export function initialValues(fields, given = {}) {
  const values = {};
  for (const f of fields) {
    const value = f.name in given ? given[f.name] : f.schema.default;
    if (f.kind === 'boolean') values[f.name] = Boolean(value);
    else if (f.kind === 'enum') {
      const index = f.options.findIndex((o) => JSON.stringify(o) === JSON.stringify(value));
      values[f.name] = index >= 0 ? String(index) : (f.required && f.options.length === 1 ? '0' : '');
    } else if (value === undefined || value === null) values[f.name] = '';
    else if (f.kind === 'list') values[f.name] = Array.isArray(value) ? value.join('\n') : '';
    else if (f.kind === 'json') values[f.name] = JSON.stringify(value, null, 2);
    else values[f.name] = String(value);
  }
  return values;
}

/** Errors found in the browser, by field name. */
export class InputProblems extends Error {
  constructor(problems) {
    super('Some fields need a fix.');
    this.name = 'InputProblems';
    this.problems = problems;
  }
}

/** The input object the form describes; blank optional fields are left out. */
export function inputBody(fields, values) {
  const body = {};
  const problems = {};
  for (const f of fields) {
    const raw = values[f.name];
    if (f.kind === 'boolean') {
      if (raw || f.required || f.schema.default !== undefined) body[f.name] = Boolean(raw);
      continue;
    }
    if (raw === '' || raw === undefined || raw === null) continue; // the server says if it is required
    if (f.kind === 'enum') body[f.name] = f.options[Number(raw)];
    else if (f.kind === 'number' || f.kind === 'integer') {
      const n = Number(String(raw).trim());
      if (String(raw).trim() === '' || !Number.isFinite(n) || (f.kind === 'integer' && !Number.isInteger(n))) {
        problems[f.name] = f.kind === 'integer' ? 'Enter a whole number' : 'Enter a number';
      } else body[f.name] = n;
    } else if (f.kind === 'list') {
      const items = String(raw).split('\n').map((s) => s.trim()).filter(Boolean);
      if (f.itemType === 'string') body[f.name] = items;
      else {
        const numbers = items.map(Number);
        if (numbers.some((n) => !Number.isFinite(n))) problems[f.name] = 'Enter one number per line';
        else body[f.name] = numbers;
      }
    } else if (f.kind === 'json') {
      try {
        body[f.name] = JSON.parse(raw);
      } catch (error) {
        problems[f.name] = `Not valid JSON: ${error.message}`;
      }
    } else body[f.name] = raw;
  }
  if (Object.keys(problems).length) throw new InputProblems(problems);
  return body;
}

function Control({ field, id, value, onChange, problem, describedBy }) {
  const common = {
    id, 'aria-invalid': problem ? 'true' : undefined, 'aria-describedby': describedBy,
    'aria-required': field.required ? 'true' : undefined,
  };
  const s = field.schema;
  if (field.kind === 'boolean') {
    return html`<input ...${common} type="checkbox" checked=${Boolean(value)}
      onChange=${(e) => onChange(e.currentTarget.checked)} />`;
  }
  if (field.kind === 'enum') {
    return html`<select ...${common} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${(!field.required || value === '') && html`<option value="">${field.required ? 'Choose…' : '— not set —'}</option>`}
      ${field.options.map((o, i) => html`<option value=${String(i)}>${typeof o === 'string' ? o : JSON.stringify(o)}</option>`)}
    </select>`;
  }
  if (field.kind === 'list' || field.kind === 'json' || (field.kind === 'string' && (s.maxLength ?? 0) > 200)) {
    return html`<textarea ...${common} class=${field.kind === 'json' ? 'code' : ''} rows=${field.kind === 'string' ? 4 : 3}
      spellcheck=${field.kind === 'json' ? 'false' : undefined}
      value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  }
  const numeric = field.kind === 'number' || field.kind === 'integer';
  const type = { email: 'email', uri: 'url', date: 'date' }[s.format] || 'text';
  return html`<input ...${common} type=${numeric ? 'text' : type}
    inputmode=${numeric ? (field.kind === 'integer' ? 'numeric' : 'decimal') : undefined}
    value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />`;
}

/** The controls: label (with "(required)"), control, hint and the field's problem. */
export function SchemaFields({ fields, values, onChange, problems = {} }) {
  const ids = useMemo(() => Object.fromEntries(fields.map((f) => [f.name, uid('input')])), [fields]);
  return html`
    <div class="form-grid">
      ${fields.map((f) => {
        const id = ids[f.name];
        const problem = problems[f.name];
        const hint = describe(f);
        const label = `${f.label}${f.required ? ' (required)' : ''}`;
        const describedBy = `${id}-hint ${id}-error`;
        const wide = f.kind === 'list' || f.kind === 'json' ? 'wide' : '';
        if (f.kind === 'boolean') {
          return html`
            <div key=${f.name} class=${`field check ${problem ? 'has-error' : ''}`}>
              <${Control} field=${f} id=${id} value=${values[f.name]} problem=${problem} describedBy=${describedBy}
                onChange=${(v) => onChange(f.name, v)} />
              <label for=${id}>${label}</label>
              ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
              ${problem && html`<p class="field-error" id=${`${id}-error`}>${problem}</p>`}
            </div>`;
        }
        return html`
          <div key=${f.name} class=${`field ${wide} ${problem ? 'has-error' : ''}`}>
            <label for=${id}>${label}</label>
            <${Control} field=${f} id=${id} value=${values[f.name]} problem=${problem} describedBy=${describedBy}
              onChange=${(v) => onChange(f.name, v)} />
            ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
            ${problem && html`<p class="field-error" id=${`${id}-error`}>${problem}</p>`}
          </div>`;
      })}
    </div>`;
}
