import { describe, expect, it, vi } from 'vitest';
import { LiveStore, formatBytes, formatDuration, searchLines } from '../../src/store';
import type { DagNode, LiveMessage, Transfer } from '../../src/types';

function node(id: string, state: DagNode['state']): DagNode {
  return {
    id,
    name: `RUN ${id}`,
    stage: null,
    location: null,
    inputs: [],
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

function transfer(key: string, current: number): Transfer {
  const [phase, id] = key.split('/');
  return { key, kind: 'export', phase, phase_name: null, vertex: null, id, label: id, current, total: null, unit: 'B', done: false };
}

const event = (type: string, fields: Record<string, unknown> = {}): LiveMessage => ({
  type: 'event',
  event: { v: 1, time: '2026-01-01T00:00:00Z', type, ...fields },
});

describe('LiveStore', () => {
  it('applies queued frames once per animation frame', () => {
    vi.useFakeTimers();
    const callbacks: FrameRequestCallback[] = [];
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => callbacks.push(callback));
    try {
      const store = new LiveStore();
      const seen: boolean[] = [];
      store.onChange(() => seen.push(store.inAnimationFrame));
      store.enqueue([event('build_started', { build_id: 'b1' })]);
      store.enqueue([event('log', { vertex: 'v', stream: 'stdout', data: 'one\n' })]);
      store.enqueue([event('log', { vertex: 'v', stream: 'stdout', data: 'two\n' })]);
      expect(store.version).toBe(0);
      expect(callbacks).toHaveLength(1);

      callbacks[0](0);
      expect(store.version).toBe(1);
      expect(seen).toEqual([true]);
      expect(store.linesOf('v').map((l) => l.text)).toEqual(['one', 'two']);
      // The fallback timer finds nothing left to apply.
      vi.advanceTimersByTime(300);
      expect(store.version).toBe(1);
      expect(store.inAnimationFrame).toBe(false);
    } finally {
      vi.unstubAllGlobals();
      vi.useRealTimers();
    }
  });

  it('cancels the fallback timer when the animation frame flushes', () => {
    vi.useFakeTimers();
    const callbacks: FrameRequestCallback[] = [];
    const canceled: number[] = [];
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => callbacks.push(callback));
    vi.stubGlobal('cancelAnimationFrame', (handle: number) => canceled.push(handle));
    try {
      const store = new LiveStore();
      store.enqueue([event('log', { vertex: 'v', stream: 'stdout', data: 'one\n' })]);
      vi.advanceTimersByTime(200);
      callbacks[0](0);
      expect(store.version).toBe(1);

      // A frame queued after that flush waits for its own animation frame:
      // the first flush's timer, due now, must not apply it.
      store.enqueue([event('log', { vertex: 'v', stream: 'stdout', data: 'two\n' })]);
      vi.advanceTimersByTime(100);
      expect(store.version).toBe(1);
      expect(callbacks).toHaveLength(2);
      callbacks[1](0);
      expect(store.version).toBe(2);
      expect(store.linesOf('v').map((l) => l.text)).toEqual(['one', 'two']);
      expect(canceled).toEqual([1, 2]);
      vi.advanceTimersByTime(1000);
      expect(store.version).toBe(2);
    } finally {
      vi.unstubAllGlobals();
      vi.useRealTimers();
    }
  });

  it('cancels the animation frame when the timer flushes', () => {
    vi.useFakeTimers();
    const canceled: number[] = [];
    vi.stubGlobal('requestAnimationFrame', () => 7);
    vi.stubGlobal('cancelAnimationFrame', (handle: number) => canceled.push(handle));
    try {
      const store = new LiveStore();
      store.enqueue([event('build_started', { build_id: 'b3' })]);
      vi.advanceTimersByTime(250);
      expect(store.version).toBe(1);
      expect(canceled).toEqual([7]);
    } finally {
      vi.unstubAllGlobals();
      vi.useRealTimers();
    }
  });

  it('flushes queued frames by timer without animation frames', () => {
    vi.useFakeTimers();
    vi.stubGlobal('requestAnimationFrame', () => 0);
    try {
      const store = new LiveStore();
      store.enqueue([event('build_started', { build_id: 'b2' })]);
      vi.advanceTimersByTime(300);
      expect(store.buildId).toBe('b2');
      expect(store.version).toBe(1);
    } finally {
      vi.unstubAllGlobals();
      vi.useRealTimers();
    }
  });

  it('replaces changed nodes and keeps others by identity', () => {
    const store = new LiveStore();
    store.apply([event('build_started', { build_id: 'b1' }), { type: 'node', node: node('a', 'queued') }, { type: 'node', node: node('b', 'queued') }]);
    const before = store.nodes.get('b');
    store.apply([{ type: 'node', node: node('a', 'running') }]);
    expect(store.nodes.get('a')?.state).toBe('running');
    expect(store.nodes.get('b')).toBe(before);
    expect(store.buildId).toBe('b1');
    expect(store.running).toBe(true);
  });

  it('splits log chunks into lines per stream', () => {
    const store = new LiveStore();
    store.apply([
      event('log', { vertex: 'v', stream: 'stdout', data: 'one\ntw' }),
      event('log', { vertex: 'v', stream: 'stderr', data: 'oops\n' }),
      event('log', { vertex: 'v', stream: 'stdout', data: 'o\n' }),
    ]);
    expect(store.linesOf('v')).toEqual([
      { text: 'one', stderr: false },
      { text: 'oops', stderr: true },
      { text: 'two', stderr: false },
    ]);
  });

  it('flushes a last line without newline', () => {
    const store = new LiveStore();
    store.apply([event('log', { vertex: 'v', stream: 'stdout', data: 'tail' })]);
    expect(store.linesOf('v')).toEqual([]);
    store.flushPartial();
    expect(store.linesOf('v')).toEqual([{ text: 'tail', stderr: false }]);
  });

  it('resets on a snapshot and on a new build', () => {
    const store = new LiveStore();
    store.apply([event('log', { vertex: 'v', stream: 'stdout', data: 'x\n' }), { type: 'node', node: node('a', 'done') }]);
    store.apply([
      {
        type: 'snapshot',
        running: false,
        model: { build_id: 'b2', nodes: [node('c', 'cached')], finished: true, duration_ms: 5, transfers: [transfer('pull-x/l1', 10)], version: 3 },
        layout: { nodes: [], edges: [], width: 0, height: 0 },
        counts: { total: 1, running: 0, cached: 1, done: 0, failed: 0 },
      },
    ]);
    expect([...store.nodes.keys()]).toEqual(['c']);
    expect(store.linesOf('v')).toEqual([]);
    expect(store.finished).toBe(true);
    expect([...store.transfers.keys()]).toEqual(['pull-x/l1']);
    store.apply([event('build_started', { build_id: 'b3' })]);
    expect(store.transfers.size).toBe(0);
  });

  it('replaces transfers by key in start order', () => {
    const store = new LiveStore();
    store.apply([{ type: 'transfer', transfer: transfer('export-0/a', 10) }, { type: 'transfer', transfer: transfer('export-0/b', 5) }]);
    const before = store.transfersVersion;
    const versionOfNodes = store.nodesVersion;
    store.apply([{ type: 'transfer', transfer: { ...transfer('export-0/a', 40), total: 40, done: true } }]);
    expect(store.transfersVersion).toBe(before + 1);
    expect(store.nodesVersion).toBe(versionOfNodes);
    expect([...store.transfers.keys()]).toEqual(['export-0/a', 'export-0/b']);
    expect(store.transfers.get('export-0/a')!.current).toBe(40);
    expect(store.transfers.get('export-0/a')!.done).toBe(true);
  });

  it('records warnings with lines and the build error', () => {
    const store = new LiveStore();
    store.apply([
      event('warning', { message: 'Empty continuation line', location: { file: 'Dockerfile', start_line: 3, end_line: 3 } }),
      event('build_finished', { success: false, error: 'step failed', duration_ms: 1 }),
      { type: 'counts', counts: { total: 1, running: 0, cached: 0, done: 0, failed: 1 }, finished: false },
      { type: 'idle' },
    ]);
    expect(store.warnings).toEqual([{ message: 'Empty continuation line', line: 3 }]);
    expect(store.error).toBe('step failed');
    expect(store.finished).toBe(false);
    expect(store.running).toBe(false);
  });

  it('notifies listeners once per frame', () => {
    const store = new LiveStore();
    let calls = 0;
    store.onChange(() => (calls += 1));
    store.apply([{ type: 'node', node: node('a', 'queued') }, { type: 'node', node: node('b', 'queued') }]);
    expect(calls).toBe(1);
  });
});

describe('helpers', () => {
  it('searches lines case-insensitively', () => {
    const lines = [
      { text: 'Error here', stderr: true },
      { text: 'fine', stderr: false },
      { text: 'another error', stderr: false },
    ];
    expect(searchLines(lines, 'ERROR')).toEqual([0, 2]);
    expect(searchLines(lines, '')).toEqual([]);
  });

  it('formats durations and sizes', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1500)).toBe('1.5 s');
    expect(formatDuration(125_000)).toBe('2 m 5 s');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
});
