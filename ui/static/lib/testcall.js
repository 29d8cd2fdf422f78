// "Test call": a tiny request through the gateway to a model or chain, showing the
// reply (or the error) and which deployment answered.

import { html, useEffect, useMemo, useState } from '../vendor/preact-htm.js';
import { api } from './api.js';
import { fmtMs } from './format.js';
import { Modal, Notice, uid } from './ui.js';

const PROMPT = 'Say hello in five words.';

export function TestCallButton({ target, type = 'chat', label = 'Test call' }) {
  const [open, setOpen] = useState(false);
  return html`
    <button type="button" onClick=${() => setOpen(true)} aria-label=${`Test call to ${target}`}>${label}</button>
    ${open && html`
      <${Modal} title=${`Test call: ${target}`} onClose=${() => setOpen(false)}>
        <${TestCall} target=${target} type=${type} />
      </${Modal}>`}`;
}

function TestCall({ target, type }) {
  const [message, setMessage] = useState(PROMPT);
  const [state, setState] = useState({ busy: false });
  const id = useMemo(() => uid('test'), []);

  async function send() {
    setState({ busy: true });
    const started = performance.now();
    try {
      const { data, headers } = type === 'embedding'
        ? await api('POST', '/v1/embeddings', {
          body: { model: target, input: message }, withHeaders: true })
        : await api('POST', '/v1/chat/completions', {
          body: { model: target, messages: [{ role: 'user', content: message }], max_tokens: 64 },
          withHeaders: true });
      setState({
        busy: false,
        data,
        ms: performance.now() - started,
        deployment: headers.get('x-headrace-deployment'),
        attempts: headers.get('x-headrace-attempts'),
        fallbacks: headers.get('x-headrace-fallbacks'),
      });
    } catch (error) {
      setState({ busy: false, error });
    }
  }
  useEffect(() => { send(); }, []);

  const { data, error } = state;
  return html`
    <form class="form" onSubmit=${(e) => { e.preventDefault(); send(); }}>
      <div class="field">
        <label for=${id}>${type === 'embedding' ? 'Input' : 'Message'}</label>
        <input id=${id} value=${message} onInput=${(e) => setMessage(e.currentTarget.value)} />
      </div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${state.busy}>
          ${state.busy ? 'Sending…' : 'Send again'}</button>
      </div>
    </form>
    <div class="test-result" aria-live="polite">
      ${state.busy && html`<p class="loading">Waiting for the answer…</p>`}
      ${error && html`<${Notice} kind="error" title=${`${error.status || 'Error'} ${error.type || ''}`}>
        ${error.message}</${Notice}>`}
      ${data && html`
        ${type === 'embedding'
          ? html`<p>Embedding of ${data.data?.[0]?.embedding?.length ?? '?'} dimensions.</p>`
          : html`<p class="reply">${data.choices?.[0]?.message?.content ?? '(no text)'}</p>`}
        <dl class="facts">
          <dt>Answered by</dt><dd>${state.deployment || data.model}</dd>
          <dt>Attempts</dt><dd>${state.attempts ?? '—'}${state.fallbacks && state.fallbacks !== '0' ? `, ${state.fallbacks} fallbacks` : ''}</dd>
          <dt>Time</dt><dd>${fmtMs(state.ms)}</dd>
          <dt>Tokens</dt><dd>${data.usage ? `${data.usage.prompt_tokens} in, ${data.usage.completion_tokens ?? 0} out` : '—'}</dd>
        </dl>`}
    </div>`;
}
