// Workflows: list, search, create and edit (a JSON editor whose server validation
// errors point at the field and step they concern), delete, a read-only graph of the
// DAG, "Run" with an input form generated from `input_schema` and the run's events
// streamed live, the run history with the run's input and each step's recorded input
// (references resolved; the definition for runs from before inputs were kept), output,
// timing, tokens and cost, and the version history.
// Routes: #/workflows (?tab=runs), #/workflows/_new, #/workflows/<id>?tab=graph|edit|run|runs|versions,
//         #/workflows/<id>/runs/<run_id>

import { html, useEffect, useMemo, useReducer, useRef, useState } from '../vendor/preact-htm.js';
import { ApiError, api, apiStream, fetchAll } from '../lib/api.js';
import { DagView } from '../lib/dag.js';
import {
  JsonBlock, JsonDetails, ensureStyles, mergePatch, parseProblems, specOf, stepIndexOf,
} from '../lib/engine.js';
import { fmtAgo, fmtDate, fmtMs, fmtNumber, fmtUsd } from '../lib/format.js';
import { locate, selectPath } from '../lib/jsonloc.js';
import { InputProblems, SchemaFields, initialValues, inputBody, schemaFields } from '../lib/schemaform.js';
import {
  ConfirmButton, ErrorNotice, JsonEditor, Loading, Notice, Page, Pager, SearchBox, StatusBadge,
  Table, Tabs, link, pretty, search, toast, uid, useAsync, usePage,
} from '../lib/ui.js';
import { VersionHistory } from '../lib/versions.js';

ensureStyles();

const NEW = '_new';
const RUNS_PAGE = 25;
const TABS = [
  { id: 'graph', label: 'Graph' }, { id: 'edit', label: 'Definition' }, { id: 'run', label: 'Run' },
  { id: 'runs', label: 'Run history' }, { id: 'versions', label: 'Versions' },
];
const STEP_TYPES = [
  ['chat_completion', 'model_id, and user_message (+ system_message) or prompt_id + prompt_variables'],
  ['knowledge_base_search', 'knowledge_base_id, query, top_k, filter, hybrid'],
  ['crag_scoring', 'query, input_documents, strategy (threshold | llm | hybrid), model_id'],
  ['conditional', 'conditions [{field, operator, value, action}], default_action'],
  ['http_request', 'method, url, headers, body'],
  ['template', 'template (any JSON with references, or Jinja2 text with format: jinja2)'],
];

export default function WorkflowsView({ path, query, navigate }) {
  if (!path.length) return html`<${WorkflowList} query=${query} navigate=${navigate} />`;
  if (path[0] === NEW) return html`<${NewWorkflow} navigate=${navigate} />`;
  if (path[1] === 'runs' && path[2]) return html`<${RunDetail} workflowId=${path[0]} runId=${path[2]} />`;
  return html`<${WorkflowDetail} id=${path[0]} query=${query} navigate=${navigate} />`;
}

const hasValue = (value) => value !== null && value !== undefined;
const runLink = (workflowId, runId) => link('workflows', workflowId, 'runs', runId);
const tabLink = (id, tab) => `${link('workflows', id)}?tab=${tab}`;

// --- list ------------------------------------------------------------------------------

function WorkflowList({ query: params, navigate }) {
  const tab = params.get('tab') === 'runs' ? 'runs' : 'list';
  const { data, error, loading, reload } = useAsync((signal) => fetchAll('/admin/workflows', { signal }));
  const [query, setQuery] = useState('');
  const rows = search(data ?? [], query, ['id', 'name', 'description', (w) => w.steps.map((s) => `${s.name} ${s.type}`).join(' ')]);
  const page = usePage(rows);

  async function remove(workflow) {
    await api('DELETE', `/admin/workflows/${encodeURIComponent(workflow.id)}`);
    toast(`Workflow ${workflow.id} deleted`);
    reload();
  }

  return html`
    <${Page} title="Workflows" subtitle="Steps over models, knowledge bases and HTTP, run as a DAG."
      actions=${html`<a class="button primary" href=${link('workflows', NEW)}>New workflow</a>`}>
      <${Tabs} tabs=${[{ id: 'list', label: 'Workflows' }, { id: 'runs', label: 'Recent runs' }]} current=${tab}
        onChange=${(t) => navigate(t === 'runs' ? '#/workflows?tab=runs' : '#/workflows', { replace: true })} />
      <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
        ${tab === 'runs' ? html`<${RunsTable} workflowId=${null} />` : html`
          <div class="toolbar">
            <${SearchBox} value=${query} onInput=${setQuery} label="Search workflows"
              placeholder="Search by id, name, description or step" />
          </div>
          <${ErrorNotice} error=${error} retry=${reload} />
          ${loading && !data ? html`<${Loading} />` : data && html`
            <${Table} caption="Workflows" rows=${page.rows}
              empty=${query ? 'No workflow matches.' : html`No workflows yet. Create one, or run <code>headrace seed</code>.`}
              columns=${[
                { key: 'id', label: 'Id', render: (w) => html`<a href=${link('workflows', w.id)}>${w.id}</a>` },
                { key: 'name', label: 'Name' },
                { key: 'steps', label: 'Steps', render: (w) => `${w.steps.length}: ${w.steps.map((s) => s.name).join(', ')}` },
                { key: 'input', label: 'Input', render: (w) => Object.keys(w.input_schema?.properties ?? {}).join(', ') || '—' },
                { key: 'enabled', label: 'State', render: (w) => html`<${StatusBadge} status=${w.enabled ? 'enabled' : 'disabled'} />` },
                { key: 'version', label: 'Version', numeric: true },
                { key: 'updated_at', label: 'Updated', render: (w) => fmtAgo(w.updated_at) },
              ]}
              actions=${(w) => html`
                <a class="button" href=${tabLink(w.id, 'run')} aria-label=${`Run ${w.id}`}>Run</a>
                <a class="button" href=${tabLink(w.id, 'edit')} aria-label=${`Edit ${w.id}`}>Edit</a>
                <${ConfirmButton} question=${`Delete ${w.id}?`} confirmLabel="Delete"
                  onConfirm=${() => remove(w)}>Delete</${ConfirmButton}>`} />
            <${Pager} ...${page.pager} />`}`}
      </div>
    </${Page}>`;
}

/** Runs, newest first, paged by the server (one workflow's, or all). */
function RunsTable({ workflowId }) {
  const [offset, setOffset] = useState(0);
  const { data, error, loading, reload } = useAsync((signal) => api('GET', '/admin/workflow-runs', {
    query: { workflow_id: workflowId, limit: RUNS_PAGE, offset }, signal,
  }), [workflowId, offset], { keep: true });
  return html`
    <div class="toolbar">
      <span class="muted">${data ? `${fmtNumber(data.total)} runs` : ''}</span>
      <button type="button" onClick=${reload}>Refresh</button>
    </div>
    <${ErrorNotice} error=${error} retry=${reload} />
    ${loading && !data ? html`<${Loading} />` : data && html`
      <${Table} caption="Workflow runs" rows=${data.data} empty="No runs yet."
        columns=${[
          { key: 'id', label: 'Run', render: (r) => html`<a href=${runLink(r.workflow_id, r.id)}>${r.id.slice(0, 16)}…</a>` },
          ...(workflowId ? [] : [{ key: 'workflow_id', label: 'Workflow', render: (r) => html`<a href=${link('workflows', r.workflow_id)}>${r.workflow_id}</a>` }]),
          { key: 'workflow_version', label: 'Version', numeric: true },
          { key: 'success', label: 'Status', render: (r) => html`<${StatusBadge} status=${r.success ? 'succeeded' : 'failed'} />` },
          { key: 'created_at', label: 'Started', render: (r) => html`<span title=${fmtDate(r.created_at)}>${fmtAgo(r.created_at)}</span>` },
          { key: 'execution_time_ms', label: 'Time', numeric: true, render: (r) => fmtMs(r.execution_time_ms) },
          { key: 'key_id', label: 'Key', render: (r) => (r.key_id ? html`<a href=${link('keys', r.key_id)}>${r.key_id}</a>` : '—') },
          { key: 'error', label: 'Error', render: (r) => r.error || '—' },
        ]} />
      <${Pager} total=${data.total} limit=${RUNS_PAGE} offset=${offset} onChange=${setOffset} />`}`;
}

// --- one workflow ----------------------------------------------------------------------

function WorkflowDetail({ id, query, navigate }) {
  const path = `/admin/workflows/${encodeURIComponent(id)}`;
  const { data: workflow, error, loading, reload } = useAsync((signal) => api('GET', path, { signal }), [id]);
  const tab = TABS.some((t) => t.id === query.get('tab')) ? query.get('tab') : 'graph';
  const back = { href: link('workflows'), label: 'Workflows' };
  if (error) return html`<${Page} title=${id} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  // While another workflow loads, the last one's data is still there: not shown.
  if (!workflow || workflow.id !== id) return html`<${Page} title=${id} back=${back}><${Loading} /></${Page}>`;
  const setTab = (t) => navigate(tabLink(id, t), { replace: true });

  async function remove() {
    await api('DELETE', path);
    toast(`Workflow ${id} deleted`);
    navigate(link('workflows'));
  }

  return html`
    <${Page} title=${workflow.name || workflow.id} back=${back}
      subtitle=${`${workflow.id} · version ${workflow.version} · ${workflow.steps.length} steps${workflow.enabled ? '' : ' · disabled'}`}
      actions=${html`
        ${tab !== 'run' && html`<button type="button" class="primary" onClick=${() => setTab('run')}>Run</button>`}
        <${ConfirmButton} question=${`Delete ${workflow.id}?`} confirmLabel="Delete" onConfirm=${remove}>Delete</${ConfirmButton}>`}>
      <${Tabs} tabs=${TABS} current=${tab} onChange=${setTab} label="Workflow sections" />
      <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
        ${tab === 'graph' && html`<${Overview} workflow=${workflow} />`}
        ${tab === 'edit' && html`<${DefinitionEditor} key=${`${workflow.id}@${workflow.version}`} workflow=${workflow}
          onSaved=${() => { toast('Saved as a new version'); reload(); }} />`}
        ${tab === 'run' && html`<${RunPanel} key=${`${workflow.id}@${workflow.version}`} workflow=${workflow} />`}
        ${tab === 'runs' && html`<${RunsTable} workflowId=${workflow.id} />`}
        ${tab === 'versions' && html`<${VersionHistory} key=${`${workflow.id}@${workflow.version}`} path=${path}
          onRestore=${async (spec) => { await api('PUT', path, { body: spec }); reload(); }} />`}
      </div>
    </${Page}>`;
}

function Overview({ workflow }) {
  const fields = schemaFields(workflow.input_schema);
  return html`
    ${workflow.description && html`<p>${workflow.description}</p>`}
    <h2>Steps</h2>
    <${DagView} spec=${workflow} label=${`Steps of ${workflow.id}`} />
    <div class="grid">
      <div>
        <h2>Input</h2>
        <${Table} caption="Input fields" rowKey="name" rows=${fields}
          empty="No input fields declared: the run takes any JSON object."
          columns=${[
            { key: 'name', label: 'Field', render: (f) => html`<code>${f.name}</code>` },
            { key: 'kind', label: 'Type', render: (f) => (f.kind === 'enum' ? `one of ${f.options.map((o) => JSON.stringify(o)).join(', ')}` : f.kind) },
            { key: 'required', label: 'Required', render: (f) => (f.required ? 'yes' : 'no') },
            { key: 'description', label: 'Description', render: (f) => f.schema.description || '—' },
          ]} />
      </div>
      <div>
        <h2>Output</h2>
        ${workflow.output == null
          ? html`<p class="muted">The output of the last step that ran.</p>`
          : html`<${JsonBlock} value=${workflow.output} label="Output mapping" />`}
      </div>
    </div>`;
}

// --- the JSON editor -------------------------------------------------------------------

const TEMPLATE = (model) => ({
  id: 'my-workflow',
  name: 'My workflow',
  description: 'What this workflow does.',
  input_schema: {
    type: 'object', required: ['question'],
    properties: { question: { type: 'string', minLength: 1, description: 'What to ask' } },
  },
  steps: [
    { name: 'answer', type: 'chat_completion', model_id: model, user_message: '${request:question}' },
  ],
  output: { answer: '${step:answer:content}' },
});

function NewWorkflow({ navigate }) {
  const models = useAsync((signal) => fetchAll('/admin/models', { signal }));
  const back = { href: link('workflows'), label: 'Workflows' };
  if (models.loading && !models.data) return html`<${Page} title="New workflow" back=${back}><${Loading} /></${Page}>`;
  const chat = (models.data ?? []).find((m) => m.type === 'chat');
  return html`
    <${Page} title="New workflow" back=${back}>
      <${DefinitionEditor} workflow=${null} initial=${TEMPLATE(chat?.id ?? 'your-model-id')}
        onSaved=${(saved) => { toast(`Workflow ${saved.id} created`); navigate(link('workflows', saved.id)); }} />
    </${Page}>`;
}

/** The definition as JSON; saving shows each problem the server names, by field and step. */
function DefinitionEditor({ workflow, initial, onSaved }) {
  const creating = workflow === null;
  const original = useMemo(() => (creating ? null : specOf(workflow)), [workflow]);
  const [textValue, setText] = useState(() => pretty(creating ? initial : original));
  const [problems, setProblems] = useState([]);
  const [busy, setBusy] = useState(false);
  const id = useMemo(() => uid('definition'), []);
  const parsed = useMemo(() => {
    try {
      return { value: JSON.parse(textValue) };
    } catch (error) {
      return { error };
    }
  }, [textValue]);
  const shown = parsed.value && typeof parsed.value === 'object' ? parsed.value : (creating ? initial : original);
  const invalid = new Set(problems.map((p) => stepIndexOf(p.path)).filter((i) => i !== null));
  const textarea = () => document.getElementById(id);

  function show(problemList) {
    setProblems(problemList);
    setTimeout(() => {
      const first = problemList.find((p) => p.path) || problemList[0];
      if (first?.path) selectPath(textarea(), first.path);
      else textarea()?.focus();
    });
  }

  async function save(event) {
    event.preventDefault();
    if (busy) return;
    if (parsed.error) {
      show([{ path: null, message: `Not valid JSON: ${parsed.error.message}` }]);
      return;
    }
    const spec = parsed.value;
    if (!creating && spec && spec.id !== undefined && spec.id !== workflow.id) {
      show([{ path: 'id', message: `the id cannot change (it is ${workflow.id}); create a new workflow instead` }]);
      return;
    }
    setBusy(true);
    setProblems([]);
    try {
      if (creating) {
        onSaved(await api('POST', '/admin/workflows', { body: spec }));
      } else {
        const patch = mergePatch(original, { ...spec, id: workflow.id });
        if (!Object.keys(patch).length) {
          toast('No changes to save', 'info');
        } else {
          await api('PUT', `/admin/workflows/${encodeURIComponent(workflow.id)}`, { body: patch });
          onSaved();
        }
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      show(parseProblems(error));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <div class="engine-split">
      <form class="form" onSubmit=${save} noValidate>
        <div class=${`field ${problems.length ? 'has-error' : ''}`}>
          <label for=${id}>Definition (JSON)</label>
          <${JsonEditor} id=${id} value=${textValue} rows=${24} describedBy=${`${id}-hint ${id}-problems`}
            invalid=${problems.length > 0} onInput=${(v) => { setText(v); }} />
          <p class="hint" id=${`${id}-hint`}>References: <code>${'${request:field}'}</code>,
            <code>${'${step:name:path}'}</code>. Saved ${creating ? 'as version 1' : 'as a new version'}; the server validates the steps and their order.</p>
          ${problems.length > 0 && html`
            <ul class="problems" id=${`${id}-problems`} role="alert" aria-label="Problems">
              ${problems.map((p) => {
                const at = p.path ? locate(textValue, p.path) : null;
                const step = stepIndexOf(p.path);
                const name = step !== null ? parsed.value?.steps?.[step]?.name : null;
                return html`<li>
                  ${p.path && html`<code>${p.path}</code>${name ? ` (step “${name}”)` : ''}: `}${p.message}
                  ${at && html`<button type="button" class="link" onClick=${() => selectPath(textarea(), p.path)}>
                    Show line ${at.line}</button>`}
                </li>`;
              })}
            </ul>`}
        </div>
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>
            ${busy ? 'Saving…' : creating ? 'Create workflow' : 'Save new version'}</button>
          <button type="button" disabled=${!parsed.value} onClick=${() => setText(pretty(parsed.value))}>Format JSON</button>
          ${!creating && html`<button type="button" onClick=${() => { setText(pretty(original)); setProblems([]); }}>Discard changes</button>`}
        </div>
        <details>
          <summary>Step types</summary>
          <dl class="facts small-facts">
            ${STEP_TYPES.map(([type, fields]) => html`<dt><code>${type}</code></dt><dd>${fields}</dd>`)}
          </dl>
          <p class="hint">Every step has <code>name</code>, <code>type</code>, and optionally <code>depends_on</code>,
            <code>on_error</code> (fail_workflow | skip_step | fallback_value), <code>retry</code>, <code>timeout_ms</code>.</p>
        </details>
      </form>
      <div>
        <h2 class="sr-only">Graph preview</h2>
        <p class="hint" aria-live="polite">${parsed.error ? 'The graph shows the last valid JSON.' : 'Graph of the definition being edited.'}</p>
        <${DagView} spec=${shown} invalid=${invalid} label="Graph of the definition being edited" />
      </div>
    </div>`;
}

// --- running ---------------------------------------------------------------------------

const MAX_EVENTS = 500;
const REATTACH_TRIES = 3;

function newRun(steps) {
  return {
    status: 'starting', runId: null, lastSeq: 0, events: [], final: null, error: null,
    steps: Object.fromEntries(steps.map((s) => [s.name, { state: 'waiting', type: s.type, delta: '' }])),
  };
}

function runReducer(run, action) {
  if (action.type === 'start') return newRun(action.steps);
  if (action.type === 'reset') return null;
  if (action.type === 'error') return { ...run, status: 'error', error: action.error };
  if (action.type === 'detached') return { ...run, status: 'detached' };
  const { event, data = {}, seq, timestamp, run_id: runId } = action.event;
  if (seq && seq <= run.lastSeq) return run; // replayed after a re-attach
  const events = [...run.events, { seq, event, step: data.step, timestamp }].slice(-MAX_EVENTS);
  const next = { ...run, events, lastSeq: seq || run.lastSeq, runId: run.runId || runId };
  const steps = { ...run.steps };
  const step = data.step ? { ...(steps[data.step] || { delta: '' }) } : null;
  if (event === 'run_started') return { ...next, status: 'running' };
  if (event === 'step_started') {
    steps[data.step] = { ...step, state: 'running', type: data.type, delta: '', output: undefined, error: null, startedAt: timestamp };
  } else if (event === 'step_output_delta') {
    steps[data.step] = { ...step, delta: (step.delta || '') + (data.delta || '') };
  } else if (event === 'step_finished') {
    steps[data.step] = {
      ...step, state: data.skipped ? 'skipped' : data.success ? 'ok' : 'failed', input: data.input, output: data.output,
      error: data.error, time: data.execution_time_ms, tokens: data.tokens, cost: data.cost,
      attempts: data.attempts, warnings: data.warnings || [],
    };
  } else if (event === 'run_finished') {
    for (const [name, s] of Object.entries(steps)) {
      if (s.state === 'waiting' || s.state === 'running') steps[name] = { ...s, state: 'not_run' };
    }
    return { ...next, steps, status: 'done', final: data };
  }
  return { ...next, steps };
}

const STEP_BADGE = {
  waiting: ['neutral', 'waiting'], running: ['running', 'running'], ok: ['succeeded', 'succeeded'],
  failed: ['failed', 'failed'], skipped: ['skipped', 'skipped'], not_run: ['neutral', 'not run'],
};

function graphStates(steps) {
  const states = {};
  for (const [name, s] of Object.entries(steps)) {
    if (['running', 'ok', 'failed', 'skipped'].includes(s.state)) states[name] = s.state;
  }
  return states;
}

/** The input form (from input_schema), then the run's events as they arrive. */
function RunPanel({ workflow }) {
  const fields = useMemo(() => schemaFields(workflow.input_schema), [workflow]);
  const [values, setValues] = useState(() => initialValues(fields));
  const [asJson, setAsJson] = useState(fields.length === 0);
  const [jsonText, setJsonText] = useState('{}');
  const [problems, setProblems] = useState({});
  const [general, setGeneral] = useState(null);
  const [run, dispatch] = useReducer(runReducer, null);
  const controller = useRef(null);
  const form = useRef();
  const jsonId = useMemo(() => uid('input-json'), []);
  useEffect(() => () => controller.current?.abort(), []);
  const running = run && (run.status === 'starting' || run.status === 'running');

  function focusProblem() {
    setTimeout(() => form.current?.querySelector('.has-error :is(input, select, textarea)')?.focus());
  }

  function toJson() {
    let body = {};
    try { body = inputBody(fields, values); } catch { /* keep what parses */ }
    setJsonText(pretty(body));
    setAsJson(true);
  }

  async function follow(path, body, signal, seen) {
    let finished = false;
    const onEvent = (event) => {
      if (!event || typeof event !== 'object' || !event.event) return;
      seen.runId = seen.runId || event.run_id;
      seen.seq = Math.max(seen.seq, event.seq || 0);
      dispatch({ type: 'event', event });
      if (event.event === 'run_finished') finished = true;
    };
    try {
      await apiStream(path, body, onEvent, { signal });
    } catch (error) {
      // A connection dropped mid-run is followed again; anything else is an error.
      const dropped = seen.runId && error.name !== 'AbortError'
        && !(error instanceof ApiError && error.status !== 0);
      if (!dropped) throw error;
    }
    return finished;
  }

  function showInputProblems(error) {
    const byField = {};
    const rest = [];
    for (const p of parseProblems(error)) {
      const name = p.path ? p.path.split(/[.[]/)[0] : null;
      if (!asJson && name && fields.some((f) => f.name === name)) {
        byField[name] = byField[name] ? `${byField[name]}; ${p.message}` : p.message;
      } else rest.push(p.path && p.path !== 'input' ? `${p.path}: ${p.message}` : p.message);
    }
    setProblems(byField);
    setGeneral(rest.length ? rest.join('; ') : null);
    focusProblem();
  }

  async function start(event) {
    event.preventDefault();
    if (running) return;
    setProblems({});
    setGeneral(null);
    let body;
    try {
      body = asJson ? JSON.parse(jsonText || '{}') : inputBody(fields, values);
    } catch (error) {
      if (error instanceof InputProblems) setProblems(error.problems);
      else setGeneral(`Not valid JSON: ${error.message}`);
      focusProblem();
      return;
    }
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    dispatch({ type: 'start', steps: workflow.steps });
    const seen = { runId: null, seq: 0 };
    try {
      const id = encodeURIComponent(workflow.id);
      let finished = await follow(`/v1/workflows/${id}/execute?stream=true`, body, abort.signal, seen);
      // A dropped stream: the run goes on; follow it again after the last event seen.
      for (let i = 0; !finished && seen.runId && i < REATTACH_TRIES; i++) {
        const again = `/v1/workflow-runs/${encodeURIComponent(seen.runId)}/events?after=${seen.seq}`;
        finished = await follow(again, null, abort.signal, seen);
      }
      if (!finished) dispatch({ type: 'detached' });
    } catch (error) {
      if (error.name === 'AbortError') return;
      if (error instanceof ApiError && error.status === 400 && !seen.runId) {
        dispatch({ type: 'reset' });
        showInputProblems(error);
        return;
      }
      dispatch({ type: 'error', error });
    }
  }

  return html`
    <div class="engine-split">
      <div>
        <form class="form panel" ref=${form} onSubmit=${start} noValidate aria-label="Run input">
          <h2>Input</h2>
          ${asJson ? html`
            <div class=${`field ${general ? 'has-error' : ''}`}>
              <label for=${jsonId}>Input (JSON object)</label>
              <${JsonEditor} id=${jsonId} value=${jsonText} rows=${8} onInput=${setJsonText} invalid=${Boolean(general)} />
            </div>` : html`
            <${SchemaFields} fields=${fields} values=${values} problems=${problems}
              onChange=${(name, value) => setValues((old) => ({ ...old, [name]: value }))} />`}
          ${general && html`<p class="form-error" role="alert">${general}</p>`}
          <div class="form-actions">
            <button type="submit" class="primary" disabled=${running}>${running ? 'Running…' : 'Run workflow'}</button>
            ${fields.length > 0 && (asJson
              ? html`<button type="button" onClick=${() => setAsJson(false)}>Use the form</button>`
              : html`<button type="button" onClick=${toJson}>Edit as JSON</button>`)}
            ${running && html`<button type="button" onClick=${() => { controller.current?.abort(); dispatch({ type: 'detached' }); }}>
              Stop following</button>`}
          </div>
        </form>
        ${run && html`<${RunProgress} workflow=${workflow} run=${run} />`}
      </div>
      <div>
        <h2 class="sr-only">Graph</h2>
        <${DagView} spec=${workflow} states=${run ? graphStates(run.steps) : {}} label=${`Steps of ${workflow.id}`} />
      </div>
    </div>`;
}

function RunProgress({ workflow, run }) {
  const statusText = {
    starting: 'Starting…', running: 'Running…', done: run.final?.success ? 'Finished.' : 'Finished with an error.',
    error: 'The run could not be followed.', detached: 'No longer following this run.',
  }[run.status];
  return html`
    <section aria-label="Run" class="run">
      <h2>Run ${run.runId && html`<code>${run.runId}</code>`}</h2>
      <p role="status" aria-live="polite" data-testid="run-status">${statusText}</p>
      ${run.error && html`<${ErrorNotice} error=${run.error} />`}
      ${run.status === 'detached' && run.runId && html`
        <${Notice}>The run goes on without you; its record will be in the
          <a href=${tabLink(workflow.id, 'runs')}>run history</a> once it ends.</${Notice}>`}
      <div class="run-steps" aria-label="Steps">
        ${workflow.steps.map((s) => html`<${LiveStep} key=${s.name} name=${s.name} step=${run.steps[s.name] || { state: 'waiting', type: s.type }} />`)}
      </div>
      ${run.final && html`
        <div class="panel" data-testid="run-output">
          <h2>Output <${StatusBadge} status=${run.final.success ? 'succeeded' : 'failed'} /></h2>
          ${run.final.error && html`<${Notice} kind="error">${run.final.error}</${Notice}>`}
          <${JsonBlock} value=${run.final.output} label="Run output" />
          <dl class="facts small-facts">
            <dt>Time</dt><dd>${fmtMs(run.final.execution_time_ms)}</dd>
            <dt>Tokens</dt><dd>${fmtNumber(run.final.tokens)}</dd>
            <dt>Cost</dt><dd>${fmtUsd(run.final.cost)}</dd>
          </dl>
          ${run.runId && html`<p><a href=${runLink(workflow.id, run.runId)}>Open this run in the history</a></p>`}
        </div>`}
      <details>
        <summary>Events (${run.events.length})</summary>
        <div class="event-log" aria-label="Run events">
          ${run.events.map((e) => html`<div key=${e.seq}>#${e.seq} ${e.timestamp ? e.timestamp.slice(11, 23) : ''} ${e.event}${e.step ? ` ${e.step}` : ''}</div>`)}
        </div>
      </details>
    </section>`;
}

function LiveStep({ name, step }) {
  const [badge, label] = STEP_BADGE[step.state] || ['neutral', step.state];
  const done = ['ok', 'failed', 'skipped'].includes(step.state);
  return html`
    <article class=${`run-step ${step.state}`} data-step=${name} data-state=${step.state} aria-label=${`Step ${name}`}>
      <div class="run-step-head">
        <strong>${name}</strong>
        <span class="run-step-meta">${step.type}</span>
        <${StatusBadge} status=${badge} label=${label} />
        ${done && html`<span class="run-step-meta">
          ${fmtMs(step.time)} · ${fmtNumber(step.tokens ?? 0)} tokens · ${fmtUsd(step.cost)}${step.attempts > 1 ? ` · ${step.attempts} attempts` : ''}</span>`}
      </div>
      ${step.delta && html`<p class="delta" aria-label=${`Streamed text of ${name}`}>${step.delta}</p>`}
      ${step.error && html`<p class="field-error">${step.error}</p>`}
      ${(step.warnings || []).map((w) => html`<p class="hint">Warning: ${w}</p>`)}
      ${done && hasValue(step.input) && html`
        <${JsonDetails} value=${step.input} summary=${`Input of ${name}`} />`}
      ${done && step.output !== undefined && step.output !== null && html`
        <${JsonDetails} value=${step.output} summary=${`Output of ${name}`} />`}
    </article>`;
}

// --- one run from the history --------------------------------------------------------

function RunDetail({ workflowId, runId }) {
  const { data: run, error, loading, reload } = useAsync(
    (signal) => api('GET', `/admin/workflow-runs/${encodeURIComponent(runId)}`, { signal }), [runId]);
  const definition = useAsync(async (signal) => {
    if (!run) return null;
    try {
      const version = await api('GET', `/admin/workflows/${encodeURIComponent(run.workflow_id)}/versions/${run.workflow_version}`, { signal });
      return version.spec;
    } catch (failure) {
      if (failure.status === 404) return null; // the workflow was deleted since
      throw failure;
    }
  }, [run?.run_id]);
  const back = { href: tabLink(workflowId, 'runs'), label: `Runs of ${workflowId}` };
  const title = `Run ${runId.slice(0, 16)}…`;
  if (error) return html`<${Page} title=${title} back=${back}><${ErrorNotice} error=${error} retry=${reload} /></${Page}>`;
  if (!run || run.run_id !== runId) return html`<${Page} title=${title} back=${back}><${Loading} /></${Page}>`;

  const spec = definition.data;
  const stepSpec = (name) => spec?.steps?.find((s) => s.name === name);
  const start = new Date(run.started_at).getTime();
  const total = Math.max(1, new Date(run.finished_at).getTime() - start);
  const states = {};
  run.steps.forEach((s) => { states[s.name] = s.skipped ? 'skipped' : s.success ? 'ok' : 'failed'; });
  const tokens = run.tokens ?? run.steps.reduce((sum, s) => sum + (s.tokens || 0), 0);
  const costs = run.steps.filter((s) => hasValue(s.cost));
  const cost = run.cost ?? (costs.length ? costs.reduce((sum, s) => sum + s.cost, 0) : null);

  return html`
    <${Page} title=${title} back=${back} subtitle=${`${run.workflow_id} · version ${run.workflow_version}`}>
      <dl class="facts">
        <dt>Status</dt><dd><${StatusBadge} status=${run.success ? 'succeeded' : 'failed'} /></dd>
        <dt>Workflow</dt><dd><a href=${link('workflows', run.workflow_id)}>${run.workflow_id}</a> (version ${run.workflow_version})</dd>
        <dt>Run id</dt><dd><code>${run.run_id}</code></dd>
        <dt>Started</dt><dd>${fmtDate(run.started_at)}</dd>
        <dt>Time</dt><dd>${fmtMs(run.execution_time_ms)}</dd>
        <dt>Tokens</dt><dd>${fmtNumber(tokens)}</dd>
        <dt>Cost</dt><dd>${fmtUsd(cost)}</dd>
        <dt>Key</dt><dd>${run.key_id ? html`<a href=${link('keys', run.key_id)}>${run.key_id}</a>` : '—'}</dd>
      </dl>
      ${run.error && html`<${Notice} kind="error" title="Error:">${run.error}</${Notice}>`}
      ${(run.warnings || []).map((w) => html`<${Notice} kind="warn">${w}</${Notice}>`)}
      <div class="grid">
        <div>
          <h2>Input</h2>
          ${hasValue(run.input)
            ? html`<${JsonBlock} value=${run.input} label="Run input" />`
            : html`<p class="muted">Not recorded for this run (it ran before inputs were kept).</p>`}
        </div>
        <div>
          <h2>Output</h2>
          <${JsonBlock} value=${run.output} label="Run output" />
        </div>
      </div>
      ${spec && html`<h2>Graph</h2><${DagView} spec=${spec} states=${states} label=${`Steps of run ${run.run_id}`} />`}
      <h2>Steps</h2>
      <${Table} caption="Step trace" rowKey=${(s) => `${s.name}-${s.started_at}`} rows=${run.steps}
        columns=${[
          { key: 'name', label: 'Step', render: (s) => html`<button type="button" class="link"
            aria-label=${`Details of step ${s.name}`} onClick=${() => openStep(run.steps.indexOf(s))}>${s.name}</button>` },
          { key: 'type', label: 'Type' },
          { key: 'status', label: 'Status', render: (s) => html`<${StatusBadge} status=${s.skipped ? 'skipped' : s.success ? 'succeeded' : 'failed'} />` },
          { key: 'started', label: 'Started', numeric: true, render: (s) => `+${fmtMs(new Date(s.started_at).getTime() - start)}` },
          { key: 'timeline', label: 'Timeline', render: (s) => {
            const left = ((new Date(s.started_at).getTime() - start) / total) * 100;
            const width = Math.max(0.5, (s.execution_time_ms / total) * 100);
            return html`<div class="timeline" aria-hidden="true"><span style=${{ left: `${Math.min(99.5, left)}%`, width: `${Math.min(100 - left, width)}%` }}></span></div>`;
          } },
          { key: 'execution_time_ms', label: 'Time', numeric: true, render: (s) => fmtMs(s.execution_time_ms) },
          { key: 'tokens', label: 'Tokens', numeric: true, render: (s) => fmtNumber(s.tokens ?? 0) },
          { key: 'cost', label: 'Cost', numeric: true, render: (s) => fmtUsd(s.cost) },
          { key: 'attempts', label: 'Attempts', numeric: true, render: (s) => s.attempts ?? 1 },
        ]} />
      <div class="run-steps">
        ${run.steps.map((s, index) => html`
          <details key=${`${s.name}-${s.started_at}`} id=${`run-step-${index}`} data-step=${s.name} class=${`run-step ${s.skipped ? 'skipped' : s.success ? 'ok' : 'failed'}`}>
            <summary>${s.name} <span class="run-step-meta">${s.type} · ${fmtMs(s.execution_time_ms)} · ${fmtNumber(s.tokens ?? 0)} tokens · ${fmtUsd(s.cost)}</span></summary>
            <h3>Input</h3>
            ${hasValue(s.input)
              ? html`<p class="hint">What the step received, references resolved${s.type === 'http_request' ? ', secrets redacted' : ''}; long values are cut.</p>
                <${JsonBlock} value=${s.input} label=${`Input of ${s.name}`} />`
              : stepSpec(s.name)
                ? html`<p class="hint">Not recorded${s.skipped ? ' (skipped)' : ''}: the step as defined in version ${run.workflow_version}; <code>${'${...}'}</code> references are resolved when it runs.</p>
                  <${JsonBlock} value=${stepInput(stepSpec(s.name))} label=${`Input of ${s.name}`} />`
                : html`<p class="muted">${definition.loading ? 'Loading…' : 'Not recorded, and the definition of this version is no longer stored.'}</p>`}
            <h3>Output</h3>
            <${JsonBlock} value=${s.output} label=${`Output of ${s.name}`} />
            ${s.error && html`<p class="field-error">Error: ${s.error}</p>`}
            ${(s.warnings || []).map((w) => html`<p class="hint">Warning: ${w}</p>`)}
            <dl class="facts small-facts">
              <dt>Started</dt><dd>${s.started_at}</dd>
              <dt>Finished</dt><dd>${s.finished_at}</dd>
              <dt>Tokens</dt><dd>${fmtNumber(s.tokens ?? 0)}</dd>
              <dt>Cost</dt><dd>${fmtUsd(s.cost)}</dd>
            </dl>
          </details>`)}
      </div>
    </${Page}>`;
}

/** Open a step's details below the trace and move there. */
function openStep(index) {
  const details = document.getElementById(`run-step-${index}`);
  if (!details) return;
  details.open = true;
  details.scrollIntoView({ block: 'start' });
  details.querySelector('summary')?.focus();
}

/** A step definition without its bookkeeping fields: what it reads and sends (shown
 * for a step whose input was not recorded, as in runs from before inputs were kept). */
function stepInput(step) {
  const skip = new Set(['name', 'type', 'description', 'depends_on', 'on_error', 'retry', 'timeout_ms', 'fallback_value']);
  return Object.fromEntries(Object.entries(step).filter(([k, v]) => !skip.has(k) && v !== null));
}
