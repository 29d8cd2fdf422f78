// Knowledge bases: list, create (embedded backend by default), edit, delete; upload
// documents (drag and drop or a file input, with progress) or paste text; the
// document list with each document's chunks; a search playground (query, top_k,
// vector or hybrid, threshold, metadata filter) showing hits with scores and metadata.
// Routes: #/knowledge, #/knowledge/<id>?tab=documents|search|settings|versions

import { html, useMemo, useRef, useState } from '../vendor/preact-htm.js';
import { api, fetchAll, upload } from '../lib/api.js';
import {
  JsonDetails, ProgressBar, ensureStyles, fmtScore, mergePatch, specOf,
} from '../lib/engine.js';
import { fmtAgo, fmtDate, fmtMs, fmtNumber } from '../lib/format.js';
import {
  ConfirmButton, ErrorNotice, Form, Input, JsonInput, Loading, Modal, Notice, Page, Pager,
  SearchBox, Select, StatusBadge, Table, Tabs, TextArea, compact, json, link, num, pretty, search,
  text, toast, uid, useAsync, useForm, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

ensureStyles();

const LOCAL_MODEL = 'local:all-MiniLM-L6-v2';
const DOCS_PAGE = 25;
const TABS = [
  { id: 'documents', label: 'Documents' }, { id: 'search', label: 'Search' },
  { id: 'settings', label: 'Settings' }, { id: 'versions', label: 'Versions' },
];
const BACKENDS = [
  { value: 'embedded', label: 'embedded (in-process, no server)' },
  { value: 'pgvector', label: 'pgvector (PostgreSQL)' },
  { value: 'qdrant', label: 'qdrant' },
];
const FILTER_HINT = '{"field": "team", "operator": "eq", "value": "support"}, or {"operator": "AND", "conditions": [...]}. '
  + 'Operators: eq, ne, gt, gte, lt, lte, contains, startsWith, endsWith, in, notIn, exists, notExists.';

export default function KnowledgeView({ path, query, navigate }) {
  return path.length
    ? html`<${KnowledgeDetail} id=${path[0]} query=${query} navigate=${navigate} />`
    : html`<${KnowledgeList} navigate=${navigate} />`;
}

const tabLink = (id, tab) => `${link('knowledge', id)}?tab=${tab}`;
const kbPath = (id) => `/admin/knowledge-bases/${encodeURIComponent(id)}`;

function chunkingText(c) {
  return c ? `${c.strategy}, ${c.size} ${c.unit} (overlap ${c.overlap})` : '—';
}

// --- list ------------------------------------------------------------------------------

function KnowledgeList({ navigate }) {
  const { data, error, loading, reload } = useAsync((signal) => fetchAll('/admin/knowledge-bases', { signal }));
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const rows = search(data ?? [], query, ['id', 'name', 'description', (k) => k.backend?.type, (k) => k.embedding?.model]);
  const page = usePage(rows);

  async function remove(kb) {
    await api('DELETE', kbPath(kb.id));
    toast(`Knowledge base ${kb.id} deleted`);
    reload();
  }

  return html`
    <${Page} title="Knowledge bases" subtitle="Documents, chunked and embedded, for search and RAG workflows."
      actions=${html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New knowledge base</button>`}>
      <div class="toolbar">
        <${SearchBox} value=${query} onInput=${setQuery} label="Search knowledge bases"
          placeholder="Search by id, name, backend or embedding model" />
      </div>
      <${ErrorNotice} error=${error} retry=${reload} />
      ${loading && !data ? html`<${Loading} />` : data && html`
        <${Table} caption="Knowledge bases" rows=${page.rows}
          empty=${query ? 'No knowledge base matches.' : 'No knowledge bases yet.'}
          columns=${[
            { key: 'id', label: 'Id', render: (k) => html`<a href=${link('knowledge', k.id)}>${k.id}</a>` },
            { key: 'name', label: 'Name' },
            { key: 'backend', label: 'Backend', render: (k) => k.backend?.type ?? '—' },
            { key: 'embedding', label: 'Embedding', render: (k) => `${k.embedding?.model} (${k.embedding?.dimensions})` },
            { key: 'chunking', label: 'Chunking', render: (k) => chunkingText(k.chunking) },
            { key: 'updated_at', label: 'Updated', render: (k) => fmtAgo(k.updated_at) },
          ]}
          actions=${(k) => html`
            <a class="button" href=${tabLink(k.id, 'search')} aria-label=${`Search ${k.id}`}>Search</a>
            <a class="button" href=${link('knowledge', k.id)} aria-label=${`Documents of ${k.id}`}>Documents</a>
            <${ConfirmButton} question=${`Delete ${k.id} and its documents?`} confirmLabel="Delete"
              onConfirm=${() => remove(k)}>Delete</${ConfirmButton}>`} />
        <${Pager} ...${page.pager} />`}
      ${creating && html`
        <${Modal} title="New knowledge base" wide onClose=${() => setCreating(false)}>
          <${KnowledgeForm} onSaved=${(kb) => {
            toast(`Knowledge base ${kb.id} created`);
            navigate(link('knowledge', kb.id));
          }} />
        </${Modal}>`}
    </${Page}>`;
}

// --- create and edit ---------------------------------------------------------------------

function initialValues(kb) {
  const str = (v) => (v === null || v === undefined ? '' : String(v));
  return {
    id: '', name: str(kb?.name), description: str(kb?.description),
    'backend.type': kb?.backend?.type ?? 'embedded', 'backend.url': str(kb?.backend?.url),
    'backend.credentials': str(kb?.backend?.credentials),
    'embedding.model': kb?.embedding?.model ?? LOCAL_MODEL, 'embedding.dimensions': str(kb?.embedding?.dimensions),
    distance: kb?.distance ?? 'cosine',
    'chunking.strategy': kb?.chunking?.strategy ?? 'recursive', 'chunking.size': str(kb?.chunking?.size ?? 1000),
    'chunking.overlap': str(kb?.chunking?.overlap ?? 100), 'chunking.unit': kb?.chunking?.unit ?? 'chars',
    metadata: pretty(kb?.metadata ?? {}),
  };
}

/** The spec the form describes; blank fields are null (left out when creating). */
function toSpec(v, creating) {
  const int = (name) => num(v, name, { integer: true });
  const keep = creating ? compact : (o) => o;
  return keep({
    name: text(v, 'name'), description: text(v, 'description'),
    backend: keep({ type: v['backend.type'], url: text(v, 'backend.url'), credentials: text(v, 'backend.credentials') }),
    embedding: keep({ model: text(v, 'embedding.model') ?? LOCAL_MODEL, dimensions: int('embedding.dimensions') }),
    distance: v.distance,
    chunking: keep({
      strategy: v['chunking.strategy'], size: int('chunking.size'), overlap: int('chunking.overlap'),
      unit: v['chunking.unit'],
    }),
    metadata: json(v, 'metadata', {}),
  });
}

/** `base` with `changes` laid over it, objects merged key by key. */
function overlay(base, changes) {
  const out = { ...base };
  for (const [key, value] of Object.entries(changes)) {
    const old = base[key];
    out[key] = value && typeof value === 'object' && !Array.isArray(value) && old && typeof old === 'object'
      && key !== 'metadata' ? overlay(old, value) : value;
  }
  return out;
}

function KnowledgeForm({ kb = null, onSaved }) {
  const creating = kb === null;
  const form = useForm(initialValues(kb));
  const models = useAsync((signal) => fetchAll('/admin/models', { signal })).data ?? [];
  const listId = useMemo(() => uid('embedding-models'), []);
  const v = form.values;

  async function submit(values) {
    const spec = toSpec(values, creating);
    if (creating) {
      onSaved(await api('POST', '/admin/knowledge-bases', { body: { id: text(values, 'id'), ...spec } }));
      return;
    }
    const before = specOf(kb, ['document_count', 'chunk_count', 'health']);
    const patch = mergePatch(before, overlay(before, spec));
    onSaved(Object.keys(patch).length ? await api('PUT', kbPath(kb.id), { body: patch }) : kb);
  }

  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel=${creating ? 'Create knowledge base' : 'Save changes'}>
      <div class="form-grid">
        ${creating && html`<${Input} name="id" label="Id" required hint="Letters, digits and hyphens." />`}
        <${Input} name="name" label="Display name" />
        <${Select} name="backend.type" label="Backend" options=${BACKENDS} />
        ${v['backend.type'] !== 'embedded' && html`
          <${Input} name="backend.url" label="Backend URL"
            hint=${v['backend.type'] === 'pgvector' ? 'A PostgreSQL URL; empty: Headrace’s own database.' : 'The Qdrant server; empty: local mode in the data directory.'} />
          <${Input} name="backend.credentials" label="Backend credentials reference" hint="env:NAME, file:/path, vault:… (the API key)" />`}
        <${Input} name="embedding.model" label="Embedding model" list=${listId}
          hint=${`A gateway embedding model, or ${LOCAL_MODEL} (offline, 384 dimensions).`} />
        <datalist id=${listId}>
          <option value=${LOCAL_MODEL}></option>
          ${models.filter((m) => m.type === 'embedding').map((m) => html`<option value=${m.id}>${m.dimensions ? `${m.dimensions} dimensions` : ''}</option>`)}
        </datalist>
        <${Input} name="embedding.dimensions" label="Dimensions" inputmode="numeric"
          hint="Empty: 384 (the local model); the model’s size otherwise." />
        <${Select} name="distance" label="Distance" options=${['cosine', 'euclidean', 'inner_product']} />
        <${Select} name="chunking.strategy" label="Chunking" options=${['recursive', 'fixed', 'sentence', 'paragraph', 'token']} />
        <${Input} name="chunking.size" label="Chunk size" inputmode="numeric" />
        <${Input} name="chunking.overlap" label="Chunk overlap" inputmode="numeric" />
        <${Select} name="chunking.unit" label="Size unit" options=${['chars', 'tokens']} />
        <div class="wide"><${TextArea} name="description" label="Description" rows="2" /></div>
      </div>
      <details>
        <summary>Metadata (JSON)</summary>
        <${JsonInput} name="metadata" label="Metadata" rows="3" />
      </details>
    </${Form}>`;
}

// --- one knowledge base ------------------------------------------------------------------

function KnowledgeDetail({ id, query, navigate }) {
  const { data: kb, error, loading, reload } = useAsync((signal) => api('GET', kbPath(id), { signal }), [id]);
  const [viewing, setViewing] = useState(null);
  const tab = TABS.some((t) => t.id === query.get('tab')) ? query.get('tab') : 'documents';
  const back = { href: link('knowledge'), label: 'Knowledge bases' };
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  if (!kb || kb.id !== id) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  const setTab = (t) => navigate(tabLink(id, t), { replace: true });

  async function remove() {
    await api('DELETE', kbPath(id));
    toast(`Knowledge base ${id} deleted`);
    navigate(link('knowledge'));
  }

  return html`
    <${Page} title=${kb.name || kb.id} back=${back}
      subtitle=${`${kb.id} · ${kb.backend.type} · ${kb.embedding.model} · ${fmtNumber(kb.document_count)} documents · ${fmtNumber(kb.chunk_count)} chunks`}
      actions=${html`<${ConfirmButton} question=${`Delete ${kb.id} and its documents?`} confirmLabel="Delete"
        onConfirm=${remove}>Delete</${ConfirmButton}>`}>
      ${kb.health && !kb.health.ok && html`<${Notice} kind="warn" title="Backend problem:">${kb.health.detail}</${Notice}>`}
      <${Tabs} tabs=${TABS} current=${tab} onChange=${setTab} label="Knowledge base sections" />
      <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
        ${tab === 'documents' && html`<${Documents} kb=${kb} onChanged=${reload} onView=${setViewing} />`}
        ${tab === 'search' && html`<${Playground} kb=${kb} onView=${setViewing} />`}
        ${tab === 'settings' && html`
          <div class="panel"><${KnowledgeForm} key=${kb.version} kb=${kb} onSaved=${() => { toast('Saved'); reload(); }} /></div>`}
        ${tab === 'versions' && html`<${VersionHistory} key=${kb.version} path=${kbPath(kb.id)}
          onRestore=${async (spec) => { await api('PUT', kbPath(kb.id), { body: spec }); reload(); }} />`}
      </div>
      ${viewing && html`
        <${Modal} title=${`Document ${viewing}`} wide onClose=${() => setViewing(null)}>
          <${DocumentChunks} kbId=${kb.id} documentId=${viewing} />
        </${Modal}>`}
    </${Page}>`;
}

// --- documents ---------------------------------------------------------------------------

function Documents({ kb, onChanged, onView }) {
  const [offset, setOffset] = useState(0);
  const [tick, setTick] = useState(0);
  const { data, error, loading, reload } = useAsync((signal) => api('GET', `${kbPath(kb.id)}/documents`, {
    query: { limit: DOCS_PAGE, offset }, signal,
  }), [kb.id, offset, tick], { keep: true });
  const changed = () => { setTick((n) => n + 1); onChanged(); };

  async function remove(doc) {
    await api('DELETE', `${kbPath(kb.id)}/documents/${encodeURIComponent(doc.id)}`);
    toast(`Document ${doc.name} deleted`);
    changed();
  }

  return html`
    <${Uploader} kb=${kb} onDone=${changed} />
    <h2>Documents</h2>
    <${ErrorNotice} error=${error} retry=${reload} />
    ${loading && !data ? html`<${Loading} />` : data && html`
      <${Table} caption="Documents" rows=${data.data} empty="No documents yet: upload some above."
        columns=${[
          { key: 'name', label: 'Name', render: (d) => html`<button type="button" class="link" onClick=${() => onView(d.id)}
            aria-label=${`Chunks of ${d.name}`}>${d.name}</button>` },
          { key: 'id', label: 'Id', render: (d) => html`<code>${d.id}</code>` },
          { key: 'status', label: 'Status', render: (d) => html`<${StatusBadge} status=${d.status} />${d.error ? html` <span class="field-error">${d.error}</span>` : ''}` },
          { key: 'chunk_count', label: 'Chunks', numeric: true, render: (d) => fmtNumber(d.chunk_count) },
          { key: 'content_type', label: 'Type', render: (d) => d.content_type || '—' },
          { key: 'source', label: 'Source' },
          { key: 'updated_at', label: 'Updated', render: (d) => html`<span title=${fmtDate(d.updated_at)}>${fmtAgo(d.updated_at)}</span>` },
        ]}
        actions=${(d) => html`
          <button type="button" onClick=${() => onView(d.id)} aria-label=${`View chunks of ${d.name}`}>Chunks</button>
          <${ConfirmButton} question=${`Delete ${d.name}?`} confirmLabel="Delete" onConfirm=${() => remove(d)}>Delete</${ConfirmButton}>`} />
      <${Pager} total=${data.total} limit=${DOCS_PAGE} offset=${offset} onChange=${setOffset} />`}`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Files by drag and drop or the file input, uploaded at once with progress; or pasted text. */
function Uploader({ kb, onDone }) {
  const [over, setOver] = useState(false);
  const [state, setState] = useState(null); // {files, fraction, phase: 'uploading'|'processing'|'done'|'error', result, error}
  const [metadata, setMetadata] = useState('');
  const [metadataError, setMetadataError] = useState(null);
  const controller = useRef(null);
  const input = useRef();
  const ids = useMemo(() => ({ file: uid('files'), meta: uid('meta'), help: uid('drop-help') }), []);
  const busy = state && (state.phase === 'uploading' || state.phase === 'processing');

  function parsedMetadata() {
    if (!metadata.trim()) return null;
    try {
      const value = JSON.parse(metadata);
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be a JSON object');
      return value;
    } catch (error) {
      throw new Error(`Metadata: ${error.message}`);
    }
  }

  async function send(fileList) {
    const files = [...fileList];
    if (!files.length || busy) return;
    setMetadataError(null);
    let meta;
    try {
      meta = parsedMetadata();
    } catch (error) {
      setMetadataError(error.message);
      document.getElementById(ids.meta)?.focus();
      return;
    }
    const form = new FormData();
    files.forEach((f) => form.append('file', f, f.name));
    if (meta) form.append('metadata', JSON.stringify(meta));
    const abort = new AbortController();
    controller.current = abort;
    const total = files.reduce((sum, f) => sum + f.size, 0);
    setState({ files, fraction: 0, phase: 'uploading', total });
    try {
      const result = await upload(`${kbPath(kb.id)}/documents`, form, (fraction) => {
        setState((old) => ({ ...old, fraction, phase: fraction >= 1 ? 'processing' : 'uploading' }));
      }, { signal: abort.signal });
      setState((old) => ({ ...old, fraction: 1, phase: 'done', result }));
      const chunks = result.data.reduce((sum, d) => sum + d.chunk_count, 0);
      toast(`${result.data.length} document${result.data.length === 1 ? '' : 's'} added (${chunks} chunks)`);
      onDone();
    } catch (error) {
      setState((old) => ({ ...old, phase: error.name === 'AbortError' ? 'cancelled' : 'error', error }));
    } finally {
      if (input.current) input.current.value = '';
    }
  }

  const drop = {
    onDragEnter: (e) => { e.preventDefault(); setOver(true); },
    onDragOver: (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; setOver(true); },
    onDragLeave: (e) => { if (!e.currentTarget.contains(e.relatedTarget)) setOver(false); },
    onDrop: (e) => { e.preventDefault(); setOver(false); send(e.dataTransfer.files); },
  };

  return html`
    <div class="panel">
      <h2>Add documents</h2>
      <div class=${`dropzone ${over ? 'over' : ''}`} ...${drop} data-testid="dropzone">
        <p id=${ids.help}><strong>Drop files here</strong>, or choose them. Text, Markdown, HTML, PDF, DOCX, CSV and JSON are parsed, chunked and embedded.</p>
        <label for=${ids.file}>Files to upload</label>
        <input id=${ids.file} ref=${input} type="file" multiple disabled=${busy} aria-describedby=${ids.help}
          onChange=${(e) => send(e.currentTarget.files)} />
      </div>
      <details>
        <summary>Metadata for the next upload</summary>
        <div class=${`field ${metadataError ? 'has-error' : ''}`}>
          <label for=${ids.meta}>Metadata (JSON object)</label>
          <textarea id=${ids.meta} class="code" rows="2" spellcheck="false" value=${metadata}
            placeholder='{"team": "support"}' aria-invalid=${metadataError ? 'true' : undefined}
            onInput=${(e) => setMetadata(e.currentTarget.value)} />
          <p class="hint">Added to every chunk of the uploaded files; search filters can use it.</p>
          ${metadataError && html`<p class="field-error" role="alert">${metadataError}</p>`}
        </div>
      </details>
      ${state && html`<${UploadStatus} state=${state} onCancel=${() => controller.current?.abort()} />`}
      <details>
        <summary>Paste text instead</summary>
        <${TextDocument} kb=${kb} onDone=${onDone} />
      </details>
    </div>`;
}

function UploadStatus({ state, onCancel }) {
  const names = state.files.map((f) => f.name).join(', ');
  const percent = Math.round(state.fraction * 100);
  return html`
    <div class="upload-status" aria-live="polite">
      ${state.phase === 'uploading' && html`
        <span>Uploading ${names} (${fmtBytes(state.total)}): ${percent}%</span>
        <${ProgressBar} fraction=${state.fraction} label="Upload progress" />
        <div><button type="button" onClick=${onCancel}>Cancel upload</button></div>`}
      ${state.phase === 'processing' && html`
        <span>Uploaded ${names}: parsing, chunking and embedding…</span>
        <${ProgressBar} fraction=${1} label="Upload progress" kind="warn" />`}
      ${state.phase === 'cancelled' && html`<${Notice} kind="warn">Upload cancelled.</${Notice}>`}
      ${state.phase === 'error' && html`<${ErrorNotice} error=${state.error} />`}
      ${state.phase === 'done' && html`<${IngestResult} result=${state.result} />`}
    </div>`;
}

function IngestResult({ result }) {
  return html`
    ${result.data.length > 0 && html`<${Notice} kind="ok" title="Added:">
      ${result.data.map((d) => `${d.name} (${d.chunk_count} chunks)`).join(', ')}</${Notice}>`}
    ${result.skipped?.length > 0 && html`<${Notice} title="Unchanged, skipped:">
      ${result.skipped.map((s) => s.name).join(', ')}</${Notice}>`}
    ${result.errors?.length > 0 && html`<${Notice} kind="error" title="Not added:">
      ${result.errors.map((e) => `${e.name}: ${e.error}`).join('; ')}</${Notice}>`}`;
}

function TextDocument({ kb, onDone }) {
  const form = useForm({ name: '', text: '', metadata: '{}' });
  const [result, setResult] = useState(null);
  async function submit(v) {
    const answer = await api('POST', `${kbPath(kb.id)}/documents`, {
      body: compact({ name: text(v, 'name'), text: v.text || null, metadata: json(v, 'metadata', {}) }),
    });
    setResult(answer);
    form.reset({ name: '', text: '', metadata: v.metadata });
    onDone();
  }
  return html`
    <${Form} form=${form} onSubmit=${submit} submitLabel="Add text">
      <div class="form-grid">
        <${Input} name="name" label="Document name" hint="Empty: named after its content." />
        <${JsonInput} name="metadata" label="Metadata" rows="1" />
        <div class="wide"><${TextArea} name="text" label="Text" rows="5" /></div>
      </div>
    </${Form}>
    ${result && html`<${IngestResult} result=${result} />`}`;
}

function DocumentChunks({ kbId, documentId }) {
  const { data: doc, error, loading, reload } = useAsync((signal) => api('GET',
    `${kbPath(kbId)}/documents/${encodeURIComponent(documentId)}`, { signal }), [kbId, documentId]);
  if (loading && !doc) return html`<${Loading} />`;
  if (error) return html`<${ErrorNotice} error=${error} retry=${reload} />`;
  return html`
    <dl class="facts small-facts">
      <dt>Name</dt><dd>${doc.name}</dd>
      <dt>Status</dt><dd><${StatusBadge} status=${doc.status} />${doc.error ? ` ${doc.error}` : ''}</dd>
      <dt>Source</dt><dd>${doc.source}</dd>
      <dt>Type</dt><dd>${doc.content_type || '—'}</dd>
      <dt>Updated</dt><dd>${fmtDate(doc.updated_at)}</dd>
    </dl>
    <${JsonDetails} value=${doc.metadata} summary="Document metadata" />
    <h3>${doc.chunks.length} chunks</h3>
    <ol class="chunks" aria-label="Chunks">
      ${doc.chunks.map((c) => html`
        <li key=${c.id}>
          <strong>Chunk ${c.chunk_index}</strong> <code>${c.id}</code>
          <pre>${c.content}</pre>
          <${JsonDetails} value=${c.metadata} summary="Chunk metadata" />
        </li>`)}
    </ol>`;
}

// --- search playground -------------------------------------------------------------------

function Playground({ kb, onView }) {
  const form = useForm({ query: '', top_k: '5', hybrid: 'false', similarity_threshold: '', filter: '' });
  const [answer, setAnswer] = useState(null);

  async function submit(v) {
    const body = compact({
      query: v.query, top_k: num(v, 'top_k', { integer: true }), hybrid: v.hybrid === 'true',
      similarity_threshold: num(v, 'similarity_threshold'), filter: json(v, 'filter'),
    });
    const started = performance.now();
    const result = await api('POST', `/v1/knowledge-bases/${encodeURIComponent(kb.id)}/search`, { body });
    setAnswer({ ...result, ms: performance.now() - started, query: v.query, hybrid: body.hybrid });
  }

  const best = answer ? Math.max(...answer.documents.map((d) => Math.abs(d.score)), 1e-9) : 1;
  return html`
    <div class="panel">
      <${Form} form=${form} onSubmit=${submit} submitLabel="Search">
        <div class="form-grid">
          <div class="wide"><${TextArea} name="query" label="Query" rows="2" /></div>
          <${Input} name="top_k" label="Results (top_k)" inputmode="numeric" />
          <${Select} name="hybrid" label="Mode" options=${[
            { value: 'false', label: 'Vector similarity' },
            { value: 'true', label: 'Hybrid (vector + keyword, RRF)' }]} />
          <${Input} name="similarity_threshold" label="Minimum score" inputmode="decimal"
            hint="Optional: hits scoring lower are left out." />
          <div class="wide"><${JsonInput} name="filter" label="Metadata filter (JSON)" rows="3" hint=${FILTER_HINT} /></div>
        </div>
      </${Form}>
    </div>
    ${answer && html`
      <section aria-label="Search results">
        <h2>${answer.count} ${answer.count === 1 ? 'hit' : 'hits'}
          <span class="muted"> in ${fmtMs(answer.ms)} (${answer.hybrid ? 'hybrid' : 'vector'})</span></h2>
        ${answer.count === 0 && html`<p class="muted">Nothing matched. Try another query, a lower minimum score, or no filter.</p>`}
        <ol class="hits">
          ${answer.documents.map((hit, i) => html`
            <li class="hit" key=${hit.id} data-testid="hit">
              <div class="hit-head">
                <strong>#${i + 1}</strong>
                <span class="hit-score" title="Score">score ${fmtScore(hit.score)}
                  <${ProgressBar} fraction=${Math.abs(hit.score) / best} label=${`Score of hit ${i + 1}`} /></span>
                <button type="button" class="link" onClick=${() => onView(hit.document_id)}>
                  ${hit.metadata?.filename || hit.document_id}</button>
                <span class="muted">chunk ${hit.chunk_index}</span>
              </div>
              <p>${hit.content}</p>
              <${JsonDetails} value=${hit.metadata} summary="Metadata" />
            </li>`)}
        </ol>
      </section>`}`;
}
