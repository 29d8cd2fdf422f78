// A workflow's steps as a read-only graph (SVG), layered by dependency.
//
//   <${DagView} spec=${workflow} states=${{search: 'ok', answer: 'running'}} invalid=${new Set([2])} />
//
// The edges follow the executor's rules (engine/workflows/validate.py): a step waits
// for its `depends_on` and for the steps its fields reference (`${step:name...}`); with
// neither anywhere in the workflow, each step waits for the one before it; a
// conditional waits for every step before it and the steps after it wait for it.
// A crag_scoring step without input_documents reads the nearest earlier search.

import { html, useEffect, useMemo, useRef, useState } from '../vendor/preact-htm.js';
import { uid } from './ui.js';

const REF = /\$\$\{|\$\{(request|step):([^}]*)\}/g;
const STRUCTURAL = new Set(['name', 'type', 'depends_on', 'on_error', 'retry', 'timeout_ms',
  'fallback_value', 'description']);
export const INPUT = '__input';
export const OUTPUT = '__output';

/** Every `${...}` reference in a JSON value: [{source: 'request'|'step', step}]. */
function references(value, found = []) {
  if (typeof value === 'string') {
    if (value.includes('${')) {
      for (const match of value.matchAll(REF)) {
        if (match[0] === '$${') continue;
        const source = match[1];
        found.push({ source, step: source === 'step' ? match[2].split(':')[0] : null });
      }
    }
  } else if (Array.isArray(value)) {
    value.forEach((item) => references(item, found));
  } else if (value && typeof value === 'object') {
    Object.values(value).forEach((item) => references(item, found));
  }
  return found;
}

/** The references a step reads before it runs (not end_workflow outputs). */
function stepReads(step) {
  const found = [];
  for (const [key, value] of Object.entries(step)) {
    if (STRUCTURAL.has(key) || key === 'default_action') continue;
    if (key === 'conditions' && Array.isArray(value)) {
      value.forEach((c) => c && typeof c === 'object' && references([c.field, c.value], found));
      continue;
    }
    references(value, found);
  }
  return found;
}

/** go_to_step / end_workflow actions of a conditional step. */
function actionsOf(step) {
  const actions = [];
  (Array.isArray(step.conditions) ? step.conditions : []).forEach((c) => c && actions.push(c.action));
  actions.push(step.default_action);
  return actions.filter((a) => a && typeof a === 'object');
}

/**
 * {nodes: [{id, name, type, index, layer, kind}], edges: [{from, to, kind}]} of a
 * workflow spec (tolerant of half-written definitions).
 */
export function workflowGraph(spec) {
  const steps = (Array.isArray(spec?.steps) ? spec.steps : [])
    .map((s, index) => ({ ...(s && typeof s === 'object' ? s : {}), index }))
    .map((s) => ({ ...s, id: typeof s.name === 'string' && s.name ? s.name : `#${s.index}` }));
  const byName = new Map();
  steps.forEach((s) => { if (!byName.has(s.id)) byName.set(s.id, s.index); });
  const reads = steps.map(stepReads);
  const explicit = steps.some((s) => Array.isArray(s.depends_on) && s.depends_on.length)
    || reads.some((r) => r.some((ref) => ref.source === 'step'));

  const deps = steps.map((s, i) => {
    const set = new Set();
    (Array.isArray(s.depends_on) ? s.depends_on : []).forEach((n) => byName.has(n) && set.add(byName.get(n)));
    reads[i].forEach((ref) => ref.source === 'step' && byName.has(ref.step) && set.add(byName.get(ref.step)));
    if (s.type === 'crag_scoring' && s.input_documents == null) {
      for (let j = i - 1; j >= 0; j--) {
        if (steps[j].type === 'knowledge_base_search') { set.add(j); break; }
      }
    }
    if (!explicit && i > 0) set.add(i - 1);
    set.delete(i);
    return set;
  });

  const edges = [];
  const has = new Set();
  const add = (from, to, kind, label) => {
    const key = `${from}>${to}`;
    if (has.has(key)) return;
    has.add(key);
    edges.push({ from, to, kind, label });
  };
  steps.forEach((s, i) => deps[i].forEach((d) => d < i && add(steps[d].id, s.id, 'dep')));
  steps.forEach((s, i) => deps[i].forEach((d) => d > i && add(steps[d].id, s.id, 'dep')));

  // Conditionals are barriers between the runs of steps around them.
  const conditionals = steps.filter((s) => s.type === 'conditional').map((s) => s.index);
  conditionals.forEach((c, k) => {
    const previous = k > 0 ? conditionals[k - 1] : -1;
    const next = k + 1 < conditionals.length ? conditionals[k + 1] : steps.length;
    const before = steps.slice(previous + 1, c);
    if (!before.length && previous >= 0) add(steps[previous].id, steps[c].id, 'barrier');
    before.forEach((s) => {
      const feeds = before.some((t) => deps[t.index].has(s.index));
      if (!feeds) add(s.id, steps[c].id, 'barrier');
    });
    const after = steps.slice(c + 1, next);
    after.forEach((s) => {
      const inside = [...deps[s.index]].some((d) => d > c && d < next);
      if (!inside) add(steps[c].id, s.id, 'barrier');
    });
    if (!after.length && next < steps.length) add(steps[c].id, steps[next].id, 'barrier');
  });

  // Input, output and jumps.
  // The input feeds the steps that wait for nothing (what reads the request is in each
  // step's tooltip); drawing every read would cross the whole graph.
  const fed = new Set(edges.map((e) => e.to));
  steps.forEach((s) => { if (!fed.has(s.id)) add(INPUT, s.id, 'io'); });
  const outputReads = references(spec?.output ?? null).filter((r) => r.source === 'step' && byName.has(r.step));
  if (spec?.output == null) {
    const last = [...steps].reverse().find((s) => s.type !== 'conditional');
    if (last) add(last.id, OUTPUT, 'io');
  } else {
    outputReads.forEach((r) => add(r.step, OUTPUT, 'io'));
  }
  steps.filter((s) => s.type === 'conditional').forEach((s) => {
    for (const action of actionsOf(s)) {
      if (typeof action.go_to_step === 'string' && byName.has(action.go_to_step)) {
        add(s.id, action.go_to_step, 'jump', 'go to');
      } else if ('end_workflow' in action) {
        add(s.id, OUTPUT, 'jump', 'end');
      }
    }
  });

  // Layers: the longest path from the input over every edge but jumps.
  const incoming = new Map();
  edges.filter((e) => e.kind !== 'jump').forEach((e) => {
    if (!incoming.has(e.to)) incoming.set(e.to, []);
    incoming.get(e.to).push(e.from);
  });
  const layer = new Map([[INPUT, 0]]);
  const visiting = new Set();
  const depth = (id) => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 1; // a cycle (invalid): break it
    visiting.add(id);
    const parents = (incoming.get(id) || []).filter((p) => p !== OUTPUT);
    const value = 1 + Math.max(0, ...parents.map(depth));
    visiting.delete(id);
    layer.set(id, value);
    return value;
  };
  steps.forEach((s) => depth(s.id));
  const last = Math.max(0, ...steps.map((s) => layer.get(s.id)));
  layer.set(OUTPUT, last + 1);

  const nodes = [
    { id: INPUT, name: 'input', type: 'request', kind: 'io', layer: 0, index: -1 },
    ...steps.map((s) => ({
      id: s.id, name: s.id, type: s.type || '?', kind: 'step', layer: layer.get(s.id), index: s.index,
      readsInput: reads[s.index].some((r) => r.source === 'request'),
    })),
    { id: OUTPUT, name: 'output', type: 'result', kind: 'io', layer: last + 1, index: steps.length },
  ];
  return { nodes, edges };
}

const W = 156;
const H = 46;
const GAP_LAYER = 64;
const GAP_NODE = 18;
const LANE = 10; // the width of an edge passing through a layer
const PAD = 16;
const ARC = 44; // room for the arcs of jumps

/**
 * Positions (Sugiyama style): nodes in columns (lr) or rows (tb) by layer; an edge
 * longer than one layer passes through a lane in each layer between, so it never
 * crosses a node; within a layer, nodes are ordered by their neighbours' mean place.
 */
function layout({ nodes, edges }, orientation) {
  const layerOf = new Map(nodes.map((n) => [n.id, n.layer]));
  const items = nodes.map((n) => ({ id: n.id, layer: n.layer, rank: n.index, lane: false }));
  const routes = [];
  for (const e of edges) {
    const [a, b] = [layerOf.get(e.from), layerOf.get(e.to)];
    const ids = [e.from];
    if (e.kind !== 'jump') {
      for (let l = a + 1; l < b; l++) {
        const id = `${e.from}>${e.to}@${l}`;
        items.push({ id, layer: l, rank: items.find((i) => i.id === e.from).rank + 0.5, lane: true });
        ids.push(id);
      }
    }
    ids.push(e.to);
    routes.push({ edge: e, ids, arc: e.kind === 'jump' && b - a !== 1 });
  }
  const byId = new Map(items.map((i) => [i.id, i]));
  const parents = new Map();
  const children = new Map();
  routes.filter((r) => !r.arc).forEach(({ ids }) => {
    for (let k = 1; k < ids.length; k++) {
      (parents.get(ids[k]) || parents.set(ids[k], []).get(ids[k])).push(ids[k - 1]);
      (children.get(ids[k - 1]) || children.set(ids[k - 1], []).get(ids[k - 1])).push(ids[k]);
    }
  });
  const layers = [];
  items.forEach((i) => { (layers[i.layer] ||= []).push(i); });
  const order = new Map();
  layers.forEach((list) => list && list.sort((x, y) => x.rank - y.rank).forEach((i, k) => order.set(i.id, k)));
  const sweep = (list, neighbours) => {
    const centre = (i) => {
      const ns = (neighbours.get(i.id) || []).filter((n) => order.has(n));
      return ns.length ? ns.reduce((sum, n) => sum + order.get(n), 0) / ns.length : order.get(i.id);
    };
    const keys = new Map(list.map((i) => [i.id, centre(i)]));
    list.sort((x, y) => keys.get(x.id) - keys.get(y.id) || x.rank - y.rank).forEach((i, k) => order.set(i.id, k));
  };
  for (let pass = 0; pass < 3; pass++) {
    layers.forEach((list, l) => list && l > 0 && sweep(list, parents));
    for (let l = layers.length - 2; l >= 0; l--) if (layers[l]) sweep(layers[l], children);
  }
  const across = (i) => (i.lane ? LANE : orientation === 'lr' ? H : W);
  const sizes = layers.map((list) => (list ? list.reduce((sum, i) => sum + across(i), 0) + GAP_NODE * (list.length - 1) : 0));
  const breadthMax = Math.max(...sizes);
  const arcs = routes.some((r) => r.arc) ? ARC : 0;
  const along = orientation === 'lr' ? W + GAP_LAYER : H + GAP_LAYER;
  const positions = new Map();
  layers.forEach((list, l) => {
    if (!list) return;
    let b = PAD + arcs + (breadthMax - sizes[l]) / 2;
    list.sort((x, y) => order.get(x.id) - order.get(y.id)).forEach((i) => {
      const a = PAD + l * along;
      positions.set(i.id, orientation === 'lr' ? { x: a, y: b, lane: i.lane } : { x: b, y: a, lane: i.lane });
      b += across(i) + GAP_NODE;
    });
  });
  const length = PAD * 2 + layers.length * along - GAP_LAYER;
  const breadth = PAD * 2 + arcs + breadthMax;
  return {
    positions, routes, byId,
    width: orientation === 'lr' ? length : breadth,
    height: orientation === 'lr' ? breadth : length,
  };
}

/** A smooth path through an edge's points (a lane is crossed straight). */
function routePath(route, positions, orientation) {
  const lr = orientation === 'lr';
  const points = route.ids.map((id) => positions.get(id));
  if (points.some((p) => !p)) return null;
  if (route.arc) {
    const [from, to] = [points[0], points[points.length - 1]];
    const forward = (lr ? to.x - from.x : to.y - from.y) > 0;
    if (lr) {
      const top = Math.min(from.y, to.y) - ARC + 8;
      const [x1, x2] = [from.x + W / 2 + (forward ? 12 : -12), to.x + W / 2 - (forward ? 12 : -12)];
      return `M${x1},${from.y} C${x1},${top} ${x2},${top} ${x2},${to.y}`;
    }
    const left = Math.min(from.x, to.x) - ARC + 8;
    const [y1, y2] = [from.y + H / 2 + (forward ? 6 : -6), to.y + H / 2 - (forward ? 6 : -6)];
    return `M${from.x},${y1} C${left},${y1} ${left},${y2} ${to.x},${y2}`;
  }
  // Each point as [entry, exit]: a node is entered on one side and left on the other.
  const ends = points.map((p) => {
    if (lr) {
      const y = p.y + (p.lane ? LANE / 2 : H / 2);
      return [[p.x, y], [p.x + W, y]];
    }
    const x = p.x + (p.lane ? LANE / 2 : W / 2);
    return [[x, p.y], [x, p.y + H]];
  });
  let d = `M${ends[0][1][0]},${ends[0][1][1]}`;
  for (let k = 1; k < ends.length; k++) {
    const [x1, y1] = ends[k - 1][1];
    const [x2, y2] = ends[k][0];
    if (lr) {
      const dx = Math.max(20, (x2 - x1) / 2);
      d += ` C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
    } else {
      const dy = Math.max(16, (y2 - y1) / 2);
      d += ` C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`;
    }
    if (k < ends.length - 1) d += ` L${ends[k][1][0]},${ends[k][1][1]}`;
  }
  return d;
}

const STATE_LABEL = { running: 'running', ok: 'succeeded', failed: 'failed', skipped: 'skipped' };

function clip(textValue, max) {
  return textValue.length > max ? `${textValue.slice(0, max - 1)}…` : textValue;
}

/** The width of an element, measured after layout and again when the window resizes. */
function useWidth(ref) {
  const [width, setWidth] = useState(null);
  useEffect(() => {
    const measure = () => ref.current && setWidth(ref.current.clientWidth);
    measure();
    window.addEventListener('resize', measure);
    return () => window.removeEventListener('resize', measure);
  }, []);
  return width;
}

/**
 * The graph of `spec`. states: {stepName: 'running'|'ok'|'failed'|'skipped'};
 * invalid: a Set of step indexes a validation error names.
 */
export function DagView({ spec, states = {}, invalid = new Set(), label = 'Workflow graph' }) {
  const box = useRef();
  const width = useWidth(box);
  const graph = useMemo(() => workflowGraph(spec), [JSON.stringify(spec)]);
  const across = useMemo(() => layout(graph, 'lr'), [graph]);
  const down = useMemo(() => layout(graph, 'tb'), [graph]);
  // Left to right when it fits (or nearly: it may shrink a little); else whichever
  // needs less shrinking.
  const orientation = width === null || across.width * 0.8 <= width || down.width >= across.width ? 'lr' : 'tb';
  const placed = orientation === 'lr' ? across : down;
  const ids = useMemo(() => ({ title: uid('dag-title'), desc: uid('dag-desc'), arrow: uid('dag-arrow'), jump: uid('dag-jump') }), []);
  const steps = graph.nodes.filter((n) => n.kind === 'step');
  if (!steps.length) return html`<p class="muted" ref=${box}>No steps to draw yet.</p>`;
  const { positions } = placed;
  const parentsOf = (id) => graph.edges.filter((e) => e.to === id && e.kind !== 'jump' && e.from !== INPUT).map((e) => e.from);
  const description = steps.map((n) => {
    const after = parentsOf(n.id);
    const state = states[n.name] ? `, ${STATE_LABEL[states[n.name]] || states[n.name]}` : '';
    return `${n.name} (${n.type}${state})${after.length ? ` after ${after.join(', ')}` : ''}`;
  }).join('; ');

  return html`
    <div class="dag-box" ref=${box}>
      <svg viewBox=${`0 0 ${placed.width} ${placed.height}`} width=${placed.width} height=${placed.height}
        role="img" aria-labelledby=${`${ids.title} ${ids.desc}`} data-orientation=${orientation}>
        <title id=${ids.title}>${label}</title>
        <desc id=${ids.desc}>${description}</desc>
        <defs>
          <marker id=${ids.arrow} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path class="dag-arrow" d="M0,0 L10,5 L0,10 z" />
          </marker>
          <marker id=${ids.jump} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path class="dag-arrow jump" d="M0,0 L10,5 L0,10 z" />
          </marker>
        </defs>
        ${placed.routes.map(({ edge: e, ...route }) => {
          const d = routePath({ ...route }, positions, orientation);
          if (!d) return null;
          return html`<path key=${`${e.from}>${e.to}`} class=${`dag-edge ${e.kind}`} d=${d}
            marker-end=${`url(#${e.kind === 'jump' ? ids.jump : ids.arrow})`}>
            ${e.label && html`<title>${e.label}</title>`}
          </path>`;
        })}
        ${graph.nodes.map((n) => {
          const p = positions.get(n.id);
          const state = n.kind === 'step' ? states[n.name] : null;
          const bad = n.kind === 'step' && invalid.has(n.index);
          const classes = ['dag-node', n.kind === 'io' ? 'io' : '', n.type === 'conditional' ? 'conditional' : '',
            state || '', bad ? 'invalid' : ''].filter(Boolean).join(' ');
          return html`
            <g key=${n.id} class=${classes} transform=${`translate(${p.x},${p.y})`}
              data-step=${n.kind === 'step' ? n.name : undefined} data-state=${state || undefined}>
              <title>${n.name} (${n.type})${n.readsInput ? ', reads the input' : ''}${state ? `: ${STATE_LABEL[state] || state}` : ''}${bad ? ': has a problem' : ''}</title>
              <rect width=${W} height=${H} rx="6" ry="6" />
              <text class="dag-name" x="10" y="19">${clip(n.name, 19)}</text>
              <text class="dag-type" x="10" y="36">${clip(`${n.type}${state ? ` · ${STATE_LABEL[state] || state}` : ''}`, 25)}</text>
            </g>`;
        })}
      </svg>
      <div class="dag-legend" aria-hidden="true">
        <span>── waits for</span><span>┄ waits for the conditional</span><span style=${{ color: '#7c3aed' }}>╌ go to / end</span>
      </div>
    </div>`;
}
