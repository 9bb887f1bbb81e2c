import { describe, expect, it } from 'vitest';
import { bytesByBuild, describeKeepReason, sortRecords } from '../../src/views/cache';
import { failureMarks } from '../../src/views/project';
import type { CacheRecord, DagNode } from '../../src/types';

function record(id: string, size: number, builds: string[], extra: Partial<CacheRecord> = {}): CacheRecord {
  return {
    id, parent: null, type: 'regular', size, shared: false, in_use: null, pinned: false,
    created: '2026-01-01T00:00:00Z', last_used: '2026-01-02T00:00:00Z', use_count: 1, images: [], builds,
    ...extra,
  };
}

describe('cache view helpers', () => {
  const records = [record('aa', 10, ['b1']), record('bb', 30, ['b1', 'b2']), record('cc', 20, [], { use_count: 5 })];

  it('sorts by a column in both directions', () => {
    expect(sortRecords(records, 'size', true).map((r) => r.id)).toEqual(['bb', 'cc', 'aa']);
    expect(sortRecords(records, 'size', false).map((r) => r.id)).toEqual(['aa', 'cc', 'bb']);
    expect(sortRecords(records, 'use_count', true)[0].id).toBe('cc');
    expect(sortRecords(records, 'id', false).map((r) => r.id)).toEqual(['aa', 'bb', 'cc']);
  });

  it('sums bytes per build', () => {
    expect(bytesByBuild(records)).toEqual([
      { build: 'b1', records: 2, bytes: 40 },
      { build: 'b2', records: 1, bytes: 30 },
    ]);
  });

  it('describes every keep reason', () => {
    expect(describeKeepReason({ reason: 'pinned' })).toMatch(/^pinned/);
    expect(describeKeepReason({ reason: 'used_by_image', detail: 'busybox:latest' })).toContain('busybox:latest');
    expect(describeKeepReason({ reason: 'parent_of', detail: 'a'.repeat(64) })).toBe(`parent of kept record ${'a'.repeat(12)}`);
    expect(describeKeepReason({ reason: 'in_use', detail: 'build 7' })).toBe('in use: build 7');
  });
});

describe('failureMarks', () => {
  const node = (state: DagNode['state'], file: string): DagNode => ({
    id: `n-${state}-${file}`, name: '[broken 1/1] RUN exit 3', stage: 'broken',
    location: { file, start_line: 8, end_line: 9 }, inputs: [], state, started_ms: null, finished_ms: null,
    cache_key: null, error: 'exit status 3', reasons: [], log_bytes: 0, progress: [],
  });

  it('marks failed steps of the same Dockerfile only', () => {
    const marks = failureMarks([node('failed', '/p/Dockerfile'), node('done', 'Dockerfile'), node('failed', 'other.Dockerfile')], 'Dockerfile');
    expect(marks).toEqual([{ startLine: 8, endLine: 9, name: '[broken 1/1] RUN exit 3', error: 'exit status 3' }]);
  });
});
