// @vitest-environment happy-dom
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DagNode, ProgressItem, Transfer } from '../../src/types';
import { NodePanel } from '../../src/views/dag';
import { TransfersStrip, barState, formatAmount, groupTransfers, percentDone } from '../../src/views/progress';

function item(fields: Partial<ProgressItem> = {}): ProgressItem {
  return { id: 'transfer', label: 'context', current: 0, total: null, unit: 'B', done: false, ...fields };
}

function transfer(kind: Transfer['kind'], id: string, fields: Partial<Transfer> = {}): Transfer {
  const phase = kind === 'context' ? null : kind === 'pull' ? 'pull-busybox' : 'export-0';
  return { ...item({ id, label: id }), key: `${phase ?? 'vertex'}/${id}`, kind, phase, phase_name: null, vertex: null, ...fields };
}

describe('progress helpers', () => {
  it('formats amounts with and without a total', () => {
    expect(formatAmount(item({ current: 512 }))).toBe('512 B');
    expect(formatAmount(item({ current: 1536, total: 4096 }))).toBe('1.5 KiB / 4.0 KiB');
    expect(formatAmount(item({ current: 3, total: 10, unit: 'files' }))).toBe('3 files / 10 files');
  });

  it('computes the share done', () => {
    expect(percentDone(item({ current: 25, total: 100 }))).toBe(25);
    expect(percentDone(item({ current: 5 }))).toBeNull();
    expect(percentDone(item({ current: 0, total: 0 }))).toBe(100);
    expect(percentDone(item({ current: 150, total: 100 }))).toBe(100);
  });

  it('picks the bar state', () => {
    expect(barState(item({ current: 5 }))).toBe('indeterminate');
    expect(barState(item({ current: 5, total: 10 }))).toBe('determinate');
    expect(barState(item({ current: 5, done: true }))).toBe('done');
  });

  it('groups pulls, context and export in that order', () => {
    const groups = groupTransfers([
      transfer('export', 'compressing layer a'),
      transfer('context', 'transfer'),
      transfer('pull', 'l1 download', { phase_name: 'pulling busybox' }),
      transfer('pull', 'l2 download', { phase_name: 'pulling busybox' }),
    ]);
    expect(groups.map((g) => g.kind)).toEqual(['pull', 'context', 'export']);
    expect(groups[0].title).toBe('pulling busybox');
    expect(groups[0].transfers.map((t) => t.id)).toEqual(['l1 download', 'l2 download']);
    expect(groups[1].title).toBe('context transfer');
  });
});

describe('progress views', () => {
  let host: HTMLElement;

  beforeEach(() => {
    host = document.createElement('div');
    document.body.appendChild(host);
  });

  afterEach(() => {
    render(null, host);
    host.remove();
  });

  it('draws the transfers strip with amounts', () => {
    const transfers = new Map<string, Transfer>();
    for (const t of [
      transfer('pull', 'l1 download', { current: 500, total: 1000 }),
      transfer('context', 'transfer', { current: 2048, done: true }),
      transfer('export', 'compressing layer a', { current: 300 }),
    ]) {
      transfers.set(t.key, t);
    }
    act(() => render(<TransfersStrip transfers={transfers} version={1} />, host));
    const bars = [...host.querySelectorAll('[data-testid="progress"]')];
    expect(bars.map((b) => b.getAttribute('data-state'))).toEqual(['determinate', 'done', 'indeterminate']);
    const amounts = [...host.querySelectorAll('[data-testid="progress-amount"]')].map((a) => a.textContent);
    expect(amounts).toEqual(['500 B / 1000 B', '2.0 KiB', '300 B']);
    const fill = host.querySelector<HTMLElement>('[data-progress-id="l1 download"] .progress-fill')!;
    expect(fill.style.width).toBe('50%');
    expect(host.querySelector('[data-progress-id="l1 download"] [role="progressbar"]')!.getAttribute('aria-valuenow')).toBe('50');
    expect(host.querySelector('[data-progress-id="compressing layer a"] [role="progressbar"]')!.hasAttribute('aria-valuenow')).toBe(false);
  });

  it('draws nothing without transfers', () => {
    act(() => render(<TransfersStrip transfers={new Map()} version={0} />, host));
    expect(host.querySelector('[data-testid="transfers"]')).toBeNull();
  });

  it('shows node progress in the details panel', () => {
    const node: DagNode = {
      id: 'sha256:1',
      name: 'load build context',
      stage: null,
      location: null,
      inputs: [],
      state: 'running',
      started_ms: 0,
      finished_ms: null,
      cache_key: null,
      error: null,
      reasons: [],
      log_bytes: 0,
      progress: [item({ current: 4096 })],
    };
    act(() => render(<NodePanel node={node} onClose={() => {}} />, host));
    const bar = host.querySelector('[data-testid="node-progress"] [data-testid="progress"]')!;
    expect(bar.getAttribute('data-state')).toBe('indeterminate');
    expect(bar.textContent).toContain('context');
    expect(bar.textContent).toContain('4.0 KiB');
  });
});
