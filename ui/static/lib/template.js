// The `template` prompt format, rendered in the browser exactly as engine/prompts.py
// does on the server: `${var:name}`, `${var:name:default}`, `$${` for a literal `${`.
// Used to preview unsaved edits; saved prompts are rendered by the server.

import { FieldError } from './form.js';

const PLACEHOLDER = /\$\$\{|\$\{var:([^}]*)\}/g;
const NAME = /^[A-Za-z0-9_-]+$/;

/** {parts, variables: [{name, default}]}; a FieldError on `content` for a bad name. */
export function parseTemplate(content) {
  const parts = [];
  let position = 0;
  for (const match of content.matchAll(PLACEHOLDER)) {
    parts.push(content.slice(position, match.index));
    position = match.index + match[0].length;
    if (match[0] === '$${') {
      parts.push('${');
      continue;
    }
    const inner = match[1];
    const colon = inner.indexOf(':');
    const name = colon < 0 ? inner : inner.slice(0, colon);
    if (!NAME.test(name)) {
      throw new FieldError('content', `invalid variable name '${name}' in \${var:${inner}}: use `
        + 'letters, digits, hyphens and underscores');
    }
    parts.push({ name, default: colon < 0 ? null : inner.slice(colon + 1) });
  }
  parts.push(content.slice(position));
  // A later occurrence with a default does not make an earlier required one optional.
  const seen = new Map();
  for (const part of parts) {
    if (typeof part === 'string') continue;
    const known = seen.get(part.name);
    if (!known || (known.default !== null && part.default === null)) seen.set(part.name, part);
  }
  return { parts, variables: [...seen.values()] };
}

/** The text; a FieldError on `variables.<name>` when a required variable has no value. */
export function renderTemplate(content, values) {
  const { parts, variables } = parseTemplate(content);
  const missing = variables.filter((v) => v.default === null && !(v.name in values));
  if (missing.length) {
    const names = missing.map((m) => `'${m.name}'`).join(', ');
    throw new FieldError(`variables.${missing[0].name}`,
      `missing value for variable${missing.length > 1 ? 's' : ''} ${names}`);
  }
  return parts.map((part) => {
    if (typeof part === 'string') return part;
    if (part.name in values) {
      const value = values[part.name];
      return typeof value === 'string' ? value : JSON.stringify(value);
    }
    return part.default || '';
  }).join('');
}

/** Names a Jinja2 template reads, roughly (the server knows exactly). */
export function jinjaVariables(content) {
  const names = new Set();
  const locals = new Set(['loop', 'true', 'false', 'none', 'True', 'False', 'None']);
  for (const m of content.matchAll(/\{%-?\s*for\s+([\w\s,]+?)\s+in\b/g)) {
    m[1].split(',').forEach((n) => locals.add(n.trim()));
  }
  for (const m of content.matchAll(/\{\{-?\s*([A-Za-z_]\w*)|\{%-?\s*(?:if|elif|for\s+[\w\s,]+?\s+in)\s+([A-Za-z_]\w*)/g)) {
    const name = m[1] || m[2];
    if (!locals.has(name)) names.add(name);
  }
  return [...names].map((name) => ({ name, default: null }));
}

/** The variables of a prompt's content in its format; [] if it does not parse. */
export function variablesOf(content, format) {
  if (format === 'jinja2') return jinjaVariables(content);
  try {
    return parseTemplate(content).variables;
  } catch {
    return [];
  }
}
