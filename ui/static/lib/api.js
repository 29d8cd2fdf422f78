// Calls to the Headrace API on the same origin (`/admin/...`, `/v1/...`), with the
// admin key kept in sessionStorage. Every failure is an ApiError carrying the
// server's OpenAI-shaped error body: {"error": {"message", "type", "param", "code"}}.

const KEY_NAME = 'headrace.apiKey';

export function getKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_NAME);
}

export class ApiError extends Error {
  constructor(status, error = {}) {
    super(error.message || (status ? `HTTP ${status}` : 'Could not reach the server'));
    this.name = 'ApiError';
    this.status = status; // 0 when the request never got an answer
    this.type = error.type ?? null;
    this.param = error.param ?? null;
    this.code = error.code ?? null;
    this.error = error;
  }
}

// The app listens for this to send the user back to the sign-in screen.
function unauthorized(error) {
  window.dispatchEvent(new CustomEvent('headrace:unauthorized', { detail: error }));
}

function headers(extra = {}, apiKey = null) {
  const key = apiKey || getKey();
  return { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...extra };
}

export function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}${path.includes('?') ? '&' : '?'}${text}` : path;
}

function errorFrom(status, data, text) {
  if (data && typeof data.error === 'object' && data.error) return new ApiError(status, data.error);
  const message = text && text.length < 300 ? `HTTP ${status}: ${text}` : `HTTP ${status}`;
  return new ApiError(status, { message });
}

/**
 * `api('GET', '/admin/models', {query: {limit: 10}})` -> parsed JSON.
 * Options: body (sent as JSON), query, signal, withHeaders (resolve to {data, headers}),
 * apiKey (instead of the stored one: the sign-in check).
 */
export async function api(method, path, {
  body, query, signal, withHeaders = false, apiKey = null,
} = {}) {
  let response;
  try {
    response = await fetch(withQuery(path, query), {
      method,
      signal,
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }, apiKey),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, { message: `Could not reach the server: ${error.message}` });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = errorFrom(response.status, data, text);
    if (response.status === 401 && getKey() && !apiKey) unauthorized(error);
    throw error;
  }
  return withHeaders ? { data, headers: response.headers } : data;
}

/** Every item of a paged admin list (`{data, has_more}`), up to `max` items. */
export async function fetchAll(path, { query = {}, signal, max = 5000 } = {}) {
  const items = [];
  for (let offset = 0; offset < max; ) {
    const page = await api('GET', path, { query: { ...query, limit: 1000, offset }, signal });
    items.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
    offset += page.data.length;
  }
  return items;
}

/**
 * POST `body` (or GET when body is null) and read server-sent events. Calls
 * `onEvent(data, {event, id})` for each event (data parsed as JSON when it is JSON).
 * Resolves to {done}: true when the stream ended with `data: [DONE]`.
 * An event whose data is an OpenAI error body rejects with an ApiError.
 */
export async function apiStream(path, body, onEvent, { signal, method } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: method || (body == null ? 'GET' : 'POST'),
      signal,
      headers: headers({
        Accept: 'text/event-stream',
        ...(body == null ? {} : { 'Content-Type': 'application/json' }),
      }),
      body: body == null ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, { message: `Could not reach the server: ${error.message}` });
  }
  if (!response.ok) {
    const text = await response.text();
    let data = null;
    try { data = JSON.parse(text); } catch { /* not JSON */ }
    const error = errorFrom(response.status, data, text);
    if (response.status === 401 && getKey()) unauthorized(error);
    throw error;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = done ? '' : blocks.pop();
    for (const block of blocks) {
      if (dispatch(block, onEvent)) return { done: true };
    }
    if (done) return { done: false };
  }
}

// One SSE block; returns true on `data: [DONE]`.
function dispatch(block, onEvent) {
  const data = [];
  let event = 'message';
  let id = null;
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id') id = value;
  }
  if (!data.length) return false;
  const text = data.join('\n');
  if (text === '[DONE]') return true;
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* plain text data */ }
  if (parsed && typeof parsed === 'object' && parsed.error?.message && !parsed.event) {
    throw new ApiError(200, parsed.error);
  }
  onEvent(parsed, { event, id });
  return false;
}

/**
 * POST a FormData with upload progress: `onProgress(fraction, loaded, total)`.
 * Resolves to the parsed JSON answer. Options: query, signal, method.
 */
export function upload(path, formData, onProgress, { query, signal, method = 'POST' } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, withQuery(path, query));
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (onProgress && event.lengthComputable) {
        onProgress(event.loaded / event.total, event.loaded, event.total);
      }
    };
    xhr.onload = () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      const error = errorFrom(xhr.status, data, xhr.responseText);
      if (xhr.status === 401 && getKey()) unauthorized(error);
      reject(error);
    };
    xhr.onerror = () => reject(new ApiError(0, { message: 'Could not reach the server' }));
    xhr.onabort = () => reject(new DOMException('Upload cancelled', 'AbortError'));
    if (signal) signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(formData);
  });
}
