// Form fields shared by API keys and teams: rate limits and permissions.

import { html } from '../vendor/preact-htm.js';
import { FieldError, Input, num } from './ui.js';

export const LIMITS = [
  ['requests_per_minute', 'Requests per minute'],
  ['requests_per_hour', 'Requests per hour'],
  ['requests_per_day', 'Requests per day'],
  ['tokens_per_minute', 'Tokens per minute'],
  ['max_concurrent', 'Concurrent requests'],
];

export const RESOURCE_TYPES = [
  ['models', 'Models'], ['chains', 'Chains'], ['prompts', 'Prompts'],
  ['knowledge_bases', 'Knowledge bases'], ['workflows', 'Workflows'],
];

export function limitValues(limits = {}) {
  return Object.fromEntries(LIMITS.map(([name]) => [`rate_limits.${name}`, limits?.[name] ?? '']));
}

export function limitsBody(values) {
  return Object.fromEntries(LIMITS.map(([name]) => [name, num(values, `rate_limits.${name}`, { integer: true })]));
}

export function RateLimitFields() {
  return html`
    <fieldset>
      <legend>Rate limits (empty: unlimited)</legend>
      <div class="form-grid">
        ${LIMITS.map(([name, label]) => html`
          <${Input} name=${`rate_limits.${name}`} label=${label} inputmode="numeric" />`)}
      </div>
    </fieldset>`;
}

export function permissionValues(permissions = {}) {
  return Object.fromEntries(RESOURCE_TYPES.map(([name]) => {
    const granted = permissions?.[name] ?? 'all';
    return [`permissions.${name}`, Array.isArray(granted) ? granted.join(', ') : granted];
  }));
}

export function permissionsBody(values) {
  return Object.fromEntries(RESOURCE_TYPES.map(([name]) => {
    const raw = String(values[`permissions.${name}`] ?? '').trim();
    if (raw === '' || raw === 'all') return [name, 'all'];
    if (raw === 'none') return [name, 'none'];
    const ids = raw.split(/[\s,]+/).filter(Boolean);
    if (ids.includes('all') || ids.includes('none')) {
      throw new FieldError(`permissions.${name}`, 'Use "all", "none", or a list of ids');
    }
    return [name, ids];
  }));
}

export function PermissionFields() {
  return html`
    <fieldset>
      <legend>Permissions: "all", "none", or ids separated by commas</legend>
      <div class="form-grid">
        ${RESOURCE_TYPES.map(([name, label]) => html`
          <${Input} name=${`permissions.${name}`} label=${label} />`)}
      </div>
    </fieldset>`;
}
