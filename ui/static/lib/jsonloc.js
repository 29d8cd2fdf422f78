// Where a value sits in JSON text: `locate(text, 'steps[1].model_id')` ->
// {start, end, line, exact}, so an editor can select the field a server error names.
//
// A small JSON scanner that records every value's span by its path (`a.b[2].c`);
// segments of the error path that are not in the text (pydantic's discriminator,
// as in `steps[1].chat_completion.model_id`) are skipped, and a missing field
// points at the object that should hold it.

function scan(text) {
  const spans = new Map();
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const string = () => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (path, keyStart) => {
    ws();
    const start = i;
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') i++;
      else {
        for (;;) {
          ws();
          const at = i;
          const key = string();
          ws();
          i++; // colon
          value(path ? `${path}.${key}` : key, at);
          ws();
          if (text[i] === ',') { i++; continue; }
          i++; // closing brace
          break;
        }
      }
    } else if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') i++;
      else {
        for (let n = 0; ; n++) {
          value(`${path}[${n}]`, null);
          ws();
          if (text[i] === ',') { i++; continue; }
          i++;
          break;
        }
      }
    } else if (ch === '"') {
      string();
    } else {
      while (i < text.length && /[^\s,\]}]/.test(text[i])) i++;
    }
    spans.set(path, { start: keyStart ?? start, end: i });
  };
  value('', null);
  return spans;
}

function segments(path) {
  const out = [];
  for (const part of String(path).split('.')) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!match) {
      out.push({ key: part });
      continue;
    }
    if (match[1]) out.push({ key: match[1] });
    for (const index of match[2].matchAll(/\[(\d+)\]/g)) out.push({ index: Number(index[1]) });
  }
  return out;
}

/** The span of `path` in `text` (or of its nearest enclosing value), or null. */
export function locate(text, path) {
  if (!path) return null;
  let spans;
  try {
    JSON.parse(text);
    spans = scan(text);
  } catch {
    return null;
  }
  let current = '';
  let exact = true;
  for (const segment of segments(path)) {
    const next = segment.index !== undefined ? `${current}[${segment.index}]`
      : current ? `${current}.${segment.key}` : segment.key;
    if (spans.has(next)) current = next;
    else exact = false;
  }
  const span = spans.get(current);
  if (!span) return null;
  const line = text.slice(0, span.start).split('\n').length;
  return { ...span, line, exact, path: current };
}

/** Select `path` in a textarea and scroll it into view. */
export function selectPath(textarea, path) {
  if (!textarea) return null;
  const found = locate(textarea.value, path);
  textarea.focus();
  if (!found) return null;
  textarea.setSelectionRange(found.start, found.end);
  const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
  textarea.scrollTop = Math.max(0, (found.line - 3) * lineHeight);
  return found;
}
