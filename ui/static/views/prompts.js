// Prompts: list, search, an editor with the variable list and a live render preview,
// delete, and the version history with a line diff.
// Routes: #/prompts, #/prompts/_new (ids cannot contain "_"), #/prompts/<id>

import { html, useEffect, useMemo, useState } from '../vendor/preact-htm.js';
import { api, fetchAll } from '../lib/api.js';
import { fmtAgo } from '../lib/format.js';
import { renderTemplate, variablesOf } from '../lib/template.js';
import {
  ConfirmButton, ErrorNotice, Form, Input, JsonInput, Loading, Page, Pager, SearchBox, Select,
  Table, Tabs, TextArea, compact, json, link, list, pretty, search, text, toast, uid, useAsync,
  useForm, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

const NEW = '_new';

export default function PromptsView({ path, navigate }) {
  if (!path.length) return html`<${PromptList} />`;
  if (path[0] === NEW) return html`<${PromptEditor} prompt=${null} navigate=${navigate} />`;
  return html`<${PromptDetail} id=${path[0]} navigate=${navigate} />`;
}

function PromptList() {
  const { data, error, loading, reload } = useAsync((signal) => fetchAll('/admin/prompts', { signal }));
  const [query, setQuery] = useState('');
  const rows = search(data ?? [], query, ['id', 'name', 'description', 'content', (p) => p.tags.join(' ')]);
  const page = usePage(rows);

  async function remove(prompt) {
    await api('DELETE', `/admin/prompts/${encodeURIComponent(prompt.id)}`);
    toast(`Prompt ${prompt.id} deleted`);
    reload();
  }
  return html`
    <${Page} title="Prompts" subtitle="Templates clients use with prompt_id and variables."
      actions=${html`<a class="button primary" href=${link('prompts', NEW)}>New prompt</a>`}>
      <div class="toolbar">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search prompts"
          placeholder="Search by id, name, tag or text" />
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Prompts" rows=${page.rows} empty=${query ? 'No prompt matches.' : 'No prompts yet.'}
          columns=${[
            { key: 'id', label: 'Id', render: (p) => html`<a href=${link('prompts', p.id)}>${p.id}</a>` },
            { key: 'name', label: 'Name' },
            { key: 'format', label: 'Format' },
            { key: 'variables', label: 'Variables', render: (p) => variablesOf(p.content, p.format).map((v) => v.name).join(', ') || '—' },
            { key: 'tags', label: 'Tags', render: (p) => p.tags.join(', ') || '—' },
            { key: 'version', label: 'Version', numeric: true },
            { key: 'updated_at', label: 'Updated', render: (p) => fmtAgo(p.updated_at) },
          ]}
          actions=${(p) => html`
            <a class="button" href=${link('prompts', p.id)} aria-label=${`Edit ${p.id}`}>Edit</a>
            <${ConfirmButton} question=${`Delete ${p.id}?`} confirmLabel="Delete"
              onConfirm=${() => remove(p)}>Delete</${ConfirmButton}>`} />
        <${Pager} ...${page.pager} />`}
    </${Page}>`;
}

function PromptDetail({ id, navigate }) {
  const path = `/admin/prompts/${encodeURIComponent(id)}`;
  const { data: prompt, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const [tab, setTab] = useState('edit');
  const back = { href: link('prompts'), label: 'Prompts' };
  if (loading && !prompt) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  return html`
    <${PromptEditor} key=${prompt.version} prompt=${prompt} navigate=${navigate} onSaved=${reload}
      tab=${tab} setTab=${setTab} />`;
}

function PromptEditor({ prompt, navigate, onSaved, tab = 'edit', setTab }) {
  const creating = prompt === null;
  const path = creating ? null : `/admin/prompts/${encodeURIComponent(prompt.id)}`;
  const str = (v) => (v === null || v === undefined ? '' : String(v));
  const form = useForm({
    id: '', name: str(prompt?.name), description: str(prompt?.description),
    format: prompt?.format ?? 'template', tags: (prompt?.tags ?? []).join(', '),
    content: prompt?.content ?? '', metadata: pretty(prompt?.metadata ?? {}),
  });
  const back = { href: link('prompts'), label: 'Prompts' };

  async function submit(v) {
    const body = {
      name: text(v, 'name'), description: text(v, 'description'), format: v.format,
      tags: list(v, 'tags'), content: v.content, metadata: json(v, 'metadata', {}),
    };
    if (creating) {
      const saved = await api('POST', '/admin/prompts', { body: compact({ id: text(v, 'id'), ...body }) });
      toast(`Prompt ${saved.id} created`);
      navigate(link('prompts', saved.id));
    } else {
      await api('PUT', path, { body });
      toast('Saved as a new version');
      onSaved();
    }
  }
  async function remove() {
    await api('DELETE', path);
    toast(`Prompt ${prompt.id} deleted`);
    navigate(link('prompts'));
  }

  const editor = html`
    <div class="editor">
      <div class="panel">
        <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create prompt' : 'Save new version'}>
          <div class="form-grid">
            ${creating && html`<${Input} name="id" label="Id" hint="Letters, digits and hyphens." />`}
            <${Input} name="name" label="Display name" />
            <${Select} name="format" label="Format" options=${[
              { value: 'template', label: 'template: ${var:name:default}' },
              { value: 'jinja2', label: 'jinja2 (sandboxed)' }]} />
            <${Input} name="tags" label="Tags" hint="Comma-separated." />
          </div>
          <${TextArea} name="content" label="Content" rows="14" class="code" spellcheck="false"
            hint=${form.values.format === 'template'
              ? 'Variables: ${var:name} or ${var:name:default}; $${ writes a literal ${.'
              : 'A Jinja2 template: {{ name }}, {% if %}, {% for %}.'} />
          <details>
            <summary>Description and metadata</summary>
            <div class="form-grid">
              <div class="wide"><${TextArea} name="description" label="Description" rows="2" /></div>
              <div class="wide"><${JsonInput} name="metadata" label="Metadata" rows="3" /></div>
            </div>
          </details>
        </${Form}>
      </div>
      <${Preview} prompt=${prompt} content=${form.values.content} format=${form.values.format} />
    </div>`;

  return html`
    <${Page} title=${creating ? 'New prompt' : prompt.name || prompt.id} back=${back}
      subtitle=${creating ? null : `${prompt.id} · version ${prompt.version}`}
      actions=${!creating && html`
        <${ConfirmButton} question=${`Delete ${prompt.id}?`} confirmLabel="Delete" onConfirm=${remove}>
          Delete</${ConfirmButton}>`}>
      ${creating ? editor : html`
        <${Tabs} tabs=${[{ id: 'edit', label: 'Editor' }, { id: 'history', label: 'History' }]}
          current=${tab} onChange=${setTab} />
        <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
          ${tab === 'edit' ? editor : html`
            <${VersionHistory} path=${path} field="content"
              onRestore=${async (spec) => { await api('PUT', path, { body: spec }); onSaved(); }} />`}
        </div>`}
    </${Page}>`;
}

/**
 * The variables of the content being edited, an input for each, and the rendered text:
 * by the server (`POST /admin/prompts/<id>/render`) when the editor holds the saved
 * version, in the browser for unsaved `template` edits.
 */
function Preview({ prompt, content, format }) {
  const [values, setValues] = useState({});
  const [result, setResult] = useState({});
  const variables = useMemo(() => variablesOf(content, format), [content, format]);
  const saved = prompt !== null && prompt.content === content && prompt.format === format;
  const given = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ''));
  const key = JSON.stringify(given);
  const ids = useMemo(() => new Map(), []);
  const idOf = (name) => ids.get(name) || ids.set(name, uid('var')).get(name);

  useEffect(() => {
    if (!saved) {
      if (format === 'jinja2') {
        setResult({ note: 'Jinja2 templates are rendered by the server: save to preview.' });
        return undefined;
      }
      try {
        setResult({ text: renderTemplate(content, given), source: 'Rendered in the browser (unsaved changes)' });
      } catch (error) {
        setResult({ error });
      }
      return undefined;
    }
    if (format === 'template') {
      try {
        renderTemplate(content, given); // a missing variable is reported without a round trip
      } catch (error) {
        setResult({ error });
        return undefined;
      }
    }
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      try {
        const answer = await api('POST', `/admin/prompts/${encodeURIComponent(prompt.id)}/render`,
          { body: { variables: given }, signal: controller.signal });
        setResult({ text: answer.rendered, source: `Rendered by the server (version ${answer.version})` });
      } catch (error) {
        if (error.name !== 'AbortError') setResult({ error });
      }
    }, 200);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [content, format, key, saved]);

  const errorFor = (name) => (result.error?.param === `variables.${name}` ? result.error : null);
  const unclaimed = result.error && !variables.some((v) => errorFor(v.name)) ? result.error : null;
  return html`
    <div class="panel">
      <h2>Variables</h2>
      ${variables.length === 0 && html`<p class="muted">This prompt has no variables.</p>`}
      ${format === 'jinja2' && variables.length > 0 && html`<p class="hint">Found by a quick scan of the template.</p>`}
      <div class="variables">
        ${variables.map((v) => html`
          <div class=${`field ${errorFor(v.name) ? 'has-error' : ''}`} key=${v.name}>
            <label for=${idOf(v.name)}>${v.name}${v.default === null ? ' (required)' : ''}</label>
            <input id=${idOf(v.name)} value=${values[v.name] ?? ''}
              placeholder=${v.default === null ? '' : `default: ${v.default}`}
              aria-invalid=${errorFor(v.name) ? 'true' : undefined}
              onInput=${(e) => setValues({ ...values, [v.name]: e.currentTarget.value })} />
            ${errorFor(v.name) && html`<p class="field-error">${errorFor(v.name).message}</p>`}
          </div>`)}
      </div>
      <h2>Preview</h2>
      <p class="hint" aria-live="polite">${result.source || result.note || ''}</p>
      ${unclaimed && html`<p class="field-error" role="alert">${unclaimed.message}</p>`}
      <pre class="preview" aria-label="Rendered prompt">${result.error ? '' : result.text ?? ''}</pre>
    </div>`;
}
