// The console's shell: sign-in, sidebar, hash router and the view modules it loads.
//
// A view is one file in views/ whose default export is a component taking
// {path, query, navigate, route}, plus one line in ROUTES below.

import {
  Component, html, render, useEffect, useRef, useState,
} from './vendor/preact-htm.js';
import { api, clearKey, getKey, setKey } from './lib/api.js';
import { Loading, Notice, Page, Toasts, uid } from './lib/ui.js';

// name: the hash (#/<name>/...), label: the sidebar, group: the sidebar section.
const ROUTES = [
  { name: 'dashboard', label: 'Dashboard', group: 'Overview', module: './views/dashboard.js' },
  { name: 'models', label: 'Models', group: 'Gateway', module: './views/models.js' },
  { name: 'chains', label: 'Chains', group: 'Gateway', module: './views/chains.js' },
  { name: 'prompts', label: 'Prompts', group: 'Gateway', module: './views/prompts.js' },
  { name: 'workflows', label: 'Workflows', group: 'Engine', module: './views/workflows.js' },
  { name: 'knowledge', label: 'Knowledge bases', group: 'Engine', module: './views/knowledge.js' },
  { name: 'operations', label: 'Operations', group: 'Engine', module: './views/operations.js' },
  { name: 'keys', label: 'API keys', group: 'Governance', module: './views/keys.js' },
  { name: 'teams', label: 'Teams', group: 'Governance', module: './views/teams.js' },
  { name: 'budgets', label: 'Budgets', group: 'Governance', module: './views/budgets.js' },
  { name: 'usage', label: 'Usage', group: 'Governance', module: './views/usage.js' },
  { name: 'audit', label: 'Audit log', group: 'Governance', module: './views/audit.js' },
];
const DEFAULT_ROUTE = 'dashboard';

// --- routing ------------------------------------------------------------------------

/** `#/models/gpt-4o?x=1` -> {name: 'models', path: ['gpt-4o'], query: URLSearchParams}. */
function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?', 2);
  let segments;
  try {
    segments = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    segments = [];
  }
  return {
    name: segments[0] || DEFAULT_ROUTE,
    path: segments.slice(1),
    query: new URLSearchParams(queryPart),
  };
}

function useLocation() {
  const [location, setLocation] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const update = () => setLocation(parseHash(window.location.hash));
    window.addEventListener('hashchange', update);
    window.addEventListener('headrace:navigate', update);
    return () => {
      window.removeEventListener('hashchange', update);
      window.removeEventListener('headrace:navigate', update);
    };
  }, []);
  return location;
}

/** Go to `#/...`; with {replace: true} the history entry is replaced (filters, tabs). */
function navigate(to, { replace = false } = {}) {
  const hash = to.startsWith('#') ? to : `#${to.startsWith('/') ? '' : '/'}${to}`;
  if (replace) {
    window.history.replaceState(null, '', hash);
    window.dispatchEvent(new Event('headrace:navigate'));
  } else {
    window.location.hash = hash;
  }
}

const modules = new Map();

function loadView(route) {
  if (!modules.has(route.name)) {
    const loading = import(route.module).then((module) => {
      if (typeof module.default !== 'function') throw new Error(`${route.module} has no default export`);
      return module.default;
    });
    // A failed load is not kept: the server may have been down for a moment.
    loading.catch(() => modules.delete(route.name));
    modules.set(route.name, loading);
  }
  return modules.get(route.name);
}

/** "the audit log view", "the API keys view": a route's label inside a sentence. */
function viewName(route) {
  const { label } = route;
  return /^.[A-Z]/.test(label) ? label : label[0].toLowerCase() + label.slice(1);
}

/** Whether the server answers at all (a view that failed to load: left out, or offline?). */
async function serverAnswers(route) {
  try {
    await fetch(new URL(route.module, import.meta.url), { method: 'HEAD', cache: 'no-store' });
    return true;
  } catch {
    return false;
  }
}

class ErrorBoundary extends Component {
  componentDidCatch(error) {
    console.error(error); // a view crashed: a bug, and browser tests fail on it
    this.setState({ error });
  }

  render({ children }, { error }) {
    if (!error) return children;
    return html`<${Notice} kind="error" title="This view failed:">${error.message}</${Notice}>`;
  }
}

function ViewHost({ route, location }) {
  const [loaded, setLoaded] = useState({ name: null });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!route) return undefined;
    let live = true;
    loadView(route).then(
      (View) => live && setLoaded({ name: route.name, View }),
      async (error) => {
        const offline = !(await serverAnswers(route));
        if (live) setLoaded({ name: route.name, error, offline });
      },
    );
    return () => { live = false; };
  }, [route?.name, attempt]);

  if (!route) {
    return html`<${Page} title="Page not found">
      <p>There is no page at <code>${window.location.hash}</code>.
        <a href="#/${DEFAULT_ROUTE}">Go to the dashboard</a>.</p>
    </${Page}>`;
  }
  if (loaded.name !== route.name) return html`<${Loading} />`;
  if (loaded.error && loaded.offline) {
    return html`<${Page} title=${route.label}>
      <${Notice} kind="error">Could not reach the server to load the ${viewName(route)} view.${' '}
        <button type="button" class="link" onClick=${() => { setLoaded({ name: null }); setAttempt((n) => n + 1); }}>
          Try again</button></${Notice}>
    </${Page}>`;
  }
  if (loaded.error) {
    return html`<${Page} title=${route.label}>
      <${Notice} kind="warn">The ${viewName(route)} view is not available in this build.</${Notice}>
      <p class="muted">Its module (<code>${route.module}</code>) could not be loaded:
        ${loaded.error.message}</p>
    </${Page}>`;
  }
  const { View } = loaded;
  // Keyed by the path too: another resource (#/prompts/a -> #/prompts/b) is a new view,
  // with none of the last one's state (forms, tabs, a crash); the query (tabs, filters)
  // is not part of the key.
  return html`<${ErrorBoundary} key=${JSON.stringify([route.name, ...location.path])}>
    <${View} path=${location.path} query=${location.query} navigate=${navigate} route=${route} />
  </${ErrorBoundary}>`;
}

// --- sign-in ------------------------------------------------------------------------

function SignIn({ onSignedIn, notice }) {
  const [key, setKeyText] = useState('');
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const [id] = useState(() => uid('key'));

  async function submit(event) {
    event.preventDefault();
    const candidate = key.trim();
    if (!candidate) {
      setProblem('Enter an admin API key.');
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      await api('GET', '/admin/models', { query: { limit: 1 }, apiKey: candidate });
      setKey(candidate);
      onSignedIn();
    } catch (error) {
      setProblem(error.status === 401 ? 'That key was not accepted.'
        : error.status === 403 ? 'That key is not an admin key.'
          : `Could not sign in: ${error.message}`);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => { document.title = 'Sign in · Headrace'; }, []);
  return html`
    <main class="signin">
      <form class="form signin-box" onSubmit=${submit} noValidate>
        <h1><img src="favicon.svg" alt="" width="28" height="28" /> Headrace</h1>
        ${notice && html`<${Notice} kind="warn">${notice}</${Notice}>`}
        <div class=${`field ${problem ? 'has-error' : ''}`}>
          <label for=${id}>Admin API key</label>
          <input id=${id} type="password" autocomplete="off" spellcheck="false" autofocus
            value=${key} onInput=${(e) => setKeyText(e.currentTarget.value)}
            aria-invalid=${problem ? 'true' : undefined} aria-describedby=${`${id}-error ${id}-hint`} />
          <p class="hint" id=${`${id}-hint`}>Kept in this browser tab only (session storage).</p>
          ${problem && html`<p class="field-error" id=${`${id}-error`} role="alert">${problem}</p>`}
        </div>
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Sign in'}</button>
        </div>
      </form>
    </main>`;
}

// --- the shell ----------------------------------------------------------------------

function Sidebar({ current, onSignOut }) {
  const [open, setOpen] = useState(false);
  const toggle = useRef();
  const groups = [...new Set(ROUTES.map((r) => r.group))];
  useEffect(() => { // any navigation closes the narrow menu (a link, Back, a link in the page)
    const close = () => setOpen(false);
    window.addEventListener('hashchange', close);
    window.addEventListener('headrace:navigate', close);
    return () => {
      window.removeEventListener('hashchange', close);
      window.removeEventListener('headrace:navigate', close);
    };
  }, []);
  function onKeyDown(event) {
    if (event.key !== 'Escape' || !open) return;
    event.preventDefault();
    setOpen(false);
    toggle.current?.focus();
  }
  return html`
    <nav class=${`sidebar ${open ? 'open' : ''}`} aria-label="Main" onKeyDown=${onKeyDown}>
      <div class="brand-row">
        <a class="brand" href=${`#/${DEFAULT_ROUTE}`}>
          <img src="favicon.svg" alt="" width="22" height="22" /> Headrace
        </a>
        <button type="button" class="menu-toggle" ref=${toggle} aria-expanded=${open ? 'true' : 'false'}
          aria-controls="nav-links" onClick=${() => setOpen(!open)}>Menu</button>
      </div>
      <div id="nav-links" class="nav-links" onClick=${(e) => e.target.closest('a') && setOpen(false)}>
        ${groups.map((group) => html`
          <div class="nav-group">
            <h2>${group}</h2>
            <ul>
              ${ROUTES.filter((r) => r.group === group).map((r) => html`
                <li><a href=${`#/${r.name}`} aria-current=${r.name === current ? 'page' : undefined}>
                  ${r.label}</a></li>`)}
            </ul>
          </div>`)}
        <button type="button" class="signout" onClick=${onSignOut}>Sign out</button>
      </div>
    </nav>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(getKey()));
  const [notice, setNotice] = useState(null);
  const location = useLocation();

  useEffect(() => {
    const expired = () => {
      clearKey();
      setNotice('Your key is no longer accepted. Sign in again.');
      setSignedIn(false);
    };
    window.addEventListener('headrace:unauthorized', expired);
    return () => window.removeEventListener('headrace:unauthorized', expired);
  }, []);

  if (!signedIn) {
    return html`<${SignIn} notice=${notice} onSignedIn=${() => { setNotice(null); setSignedIn(true); }} />`;
  }
  const route = ROUTES.find((r) => r.name === location.name);
  const signOut = () => {
    clearKey();
    setNotice(null);
    setSignedIn(false);
  };
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>
      Skip to content</a>
    <div class="shell">
      <${Sidebar} current=${location.name} onSignOut=${signOut} />
      <main id="main" tabindex="-1">
        <${ViewHost} route=${route} location=${location} />
      </main>
    </div>
    <${Toasts} />`;
}

render(html`<${App} />`, document.getElementById('app'));
