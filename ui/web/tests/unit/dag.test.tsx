// @vitest-environment happy-dom
import { options, render, type VNode } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LiveStore } from '../../src/store';
import type { DagNode, Layout } from '../../src/types';
import { DagView, NodeView } from '../../src/views/dag';

/** The function a `memo` component wraps, which runs only when memo does not skip a render. */
const inner = (component: unknown) => (component as { type: unknown }).type;

const id = (i: number) => `sha256:${String(i).padStart(64, '0')}`;

function node(i: number, state: DagNode['state']): DagNode {
  return {
    id: id(i),
    name: `RUN step ${i}`,
    stage: null,
    location: null,
    inputs: i === 0 ? [] : [id(i - 1)],
    state,
    started_ms: null,
    finished_ms: null,
    cache_key: null,
    error: null,
    reasons: [],
    log_bytes: 0,
    progress: [],
  };
}

/** A column of `count` boxes, small enough to be inside the default 1200 x 800 view at zoom 1. */
function layout(count: number): Layout {
  const nodes = Array.from({ length: count }, (_, i) => ({
    id: id(i),
    name: `RUN step ${i}`,
    layer: i,
    x: 0,
    y: i * 60,
    width: 220,
    height: 44,
  }));
  const edges = nodes.slice(1).map((box, k) => ({ from: nodes[k].id, to: box.id, points: [[110, box.y - 16], [110, box.y]] as [number, number][] }));
  return { nodes, edges, width: 220, height: count * 60 };
}

describe('DagView', () => {
  let host: HTMLElement;
  let renders: string[];
  let graphRenders: number;
  let previousHook: typeof options.vnode;

  beforeEach(() => {
    host = document.createElement('div');
    document.body.appendChild(host);
    renders = [];
    graphRenders = 0;
    // A memoized component that renders creates a vnode of its inner
    // function, so counting those vnodes counts the renders memo did not skip.
    previousHook = options.vnode;
    options.vnode = (vnode: VNode) => {
      if (vnode.type === inner(NodeView)) renders.push((vnode.props as unknown as { box: { id: string } }).box.id);
      if (vnode.type === inner(DagView)) graphRenders += 1;
      previousHook?.(vnode);
    };
  });

  afterEach(() => {
    options.vnode = previousHook;
    render(null, host);
    host.remove();
  });

  const onSelect = () => {};
  const view = (store: LiveStore) => (
    <DagView layout={store.layout} nodes={store.nodes} nodesVersion={store.nodesVersion} selected={null} onSelect={onSelect} />
  );

  /** Renders the graph and lets its first measure and fit settle, then resets the counts. */
  function mount(store: LiveStore) {
    act(() => render(view(store), host));
    expect(host.querySelectorAll('[data-node-id]')).toHaveLength(store.layout.nodes.length);
    renders = [];
    graphRenders = 0;
  }

  function startBuild(count: number): LiveStore {
    const store = new LiveStore();
    store.apply([
      { type: 'event', event: { v: 1, time: '', type: 'build_started', build_id: 'b' } },
      ...Array.from({ length: count }, (_, i) => ({ type: 'node' as const, node: node(i, 'queued') })),
      { type: 'layout', layout: layout(count) },
    ]);
    return store;
  }

  it('draws every box with its state', () => {
    const store = startBuild(5);
    mount(store);
    const states = [...host.querySelectorAll('[data-node-id]')].map((g) => g.getAttribute('data-state'));
    expect(states).toEqual(['queued', 'queued', 'queued', 'queued', 'queued']);
    expect(host.querySelectorAll('polyline')).toHaveLength(4);
  });

  it('renders only the node whose vertex changed', () => {
    const store = startBuild(10);
    mount(store);
    store.apply([{ type: 'node', node: node(3, 'running') }]);
    act(() => render(view(store), host));
    expect(graphRenders).toBe(1);
    expect(renders).toEqual([id(3)]);
    expect(host.querySelector(`[data-node-id="${id(3)}"]`)!.getAttribute('data-state')).toBe('running');
    expect(host.querySelector(`[data-node-id="${id(3)}"] rect`)!.getAttribute('fill')).toBe('#3b82f6');
  });

  it('follows the running step', () => {
    const store = startBuild(10);
    mount(store);
    const follow = host.querySelector<HTMLInputElement>('input[type="checkbox"]')!;
    act(() => {
      follow.checked = true;
      follow.dispatchEvent(new Event('change', { bubbles: true }));
    });
    store.apply([{ type: 'node', node: { ...node(7, 'running'), started_ms: 70 } }]);
    act(() => render(view(store), host));

    // happy-dom has no layout, so the canvas is 0 x 0 and centring a box
    // puts its centre at the origin: the translation is minus the centre
    // times the scale.
    const world = host.querySelector<HTMLElement>('.dag-world')!.style.transform;
    const [, x, y, scale] = /translate\((.+)px, (.+)px\) scale\((.+)\)/.exec(world)!.map(Number);
    expect(x).toBeCloseTo(-110 * scale);
    expect(y).toBeCloseTo(-(7 * 60 + 22) * scale);
  });

  it('skips the graph for frames with only log lines', () => {
    const store = startBuild(10);
    mount(store);
    const before = store.nodesVersion;
    store.apply([{ type: 'event', event: { v: 1, time: '', type: 'log', vertex: id(0), stream: 'stdout', data: 'hello\n' } }]);
    expect(store.nodesVersion).toBe(before);
    act(() => render(view(store), host));
    expect(graphRenders).toBe(0);
    expect(renders).toEqual([]);
  });
});
