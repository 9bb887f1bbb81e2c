// The cache view: the store's records as a sortable table and a treemap by
// size, pin/unpin, the bytes each recent build used, and prune with a
// dry-run preview that lists what would go and why every other record stays.

import { useEffect, useState } from 'preact/hooks';
import type { Client } from '../client';
import { formatBytes } from '../store';
import { squarify } from '../treemap';
import type { CacheRecord, CacheUsage, KeepReason, PruneReport, PruneRequest } from '../types';

type Column = 'id' | 'type' | 'size' | 'shared' | 'in_use' | 'created' | 'last_used' | 'use_count' | 'builds';

const COLUMNS: { key: Column; label: string }[] = [
  { key: 'id', label: 'ID' },
  { key: 'type', label: 'Type' },
  { key: 'size', label: 'Size' },
  { key: 'shared', label: 'Shared' },
  { key: 'in_use', label: 'In use' },
  { key: 'created', label: 'Created' },
  { key: 'last_used', label: 'Last used' },
  { key: 'use_count', label: 'Uses' },
  { key: 'builds', label: 'Builds' },
];

const TYPE_COLOURS: Record<string, string> = {
  regular: '#8b5cf6',
  layer: '#0ea5e9',
  'source.local': '#f59e0b',
  'exec.cachemount': '#10b981',
};

/** The sentence `strata prune --dry-run` prints for a kept record. */
export function describeKeepReason(kept: KeepReason): string {
  switch (kept.reason) {
    case 'in_use':
      return `in use: ${kept.detail ?? ''}`;
    case 'pinned':
      return 'pinned: unpin it to let prune delete it';
    case 'used_by_image':
      return `used by image ${kept.detail ?? ''}`;
    case 'not_matched':
      return 'does not match the filters';
    case 'layer_without_all':
      return 'image layer: tick "include image layers" to delete it';
    case 'within_keep_duration':
      return 'used within the keep duration';
    case 'under_storage_limit':
      return 'within the storage limit';
    case 'parent_of':
      return `parent of kept record ${(kept.detail ?? '').slice(0, 12)}`;
  }
}

function sortValue(record: CacheRecord, column: Column): string | number {
  switch (column) {
    case 'size':
    case 'use_count':
      return record[column];
    case 'shared':
      return record.shared ? 1 : 0;
    case 'in_use':
      return record.in_use ?? '';
    case 'builds':
      return record.builds.length;
    default:
      return record[column];
  }
}

export function sortRecords(records: CacheRecord[], column: Column, descending: boolean): CacheRecord[] {
  const sign = descending ? -1 : 1;
  return [...records].sort((a, b) => {
    const x = sortValue(a, column);
    const y = sortValue(b, column);
    const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return sign * order || a.id.localeCompare(b.id);
  });
}

/** Bytes of the records each build used, largest first. */
export function bytesByBuild(records: CacheRecord[]): { build: string; records: number; bytes: number }[] {
  const totals = new Map<string, { records: number; bytes: number }>();
  for (const record of records) {
    for (const build of record.builds) {
      const entry = totals.get(build) ?? { records: 0, bytes: 0 };
      entry.records += 1;
      entry.bytes += record.size;
      totals.set(build, entry);
    }
  }
  return [...totals].map(([build, entry]) => ({ build, ...entry })).sort((a, b) => b.bytes - a.bytes);
}

function formatTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+/, '').replace('Z', ' UTC');
}

export function CacheView(props: { client: Client }) {
  const { client } = props;
  const [usage, setUsage] = useState<CacheUsage | null>(null);
  const [sort, setSort] = useState<{ column: Column; descending: boolean }>({ column: 'size', descending: true });
  const [message, setMessage] = useState<string | null>(null);
  const [preview, setPreview] = useState<PruneReport | null>(null);
  const [options, setOptions] = useState({ all: false, keep_duration: '', keep_storage: '', filters: '' });
  const fail = (error: Error) => setMessage(error.message);
  const reload = () => client.cacheUsage().then(setUsage, fail);

  useEffect(() => {
    reload();
  }, [client]);

  const request = (dryRun: boolean): PruneRequest => ({
    dry_run: dryRun,
    all: options.all,
    filters: options.filters.split(/\s+/).filter(Boolean),
    keep_duration: options.keep_duration.trim() || undefined,
    keep_storage: options.keep_storage.trim() || undefined,
  });
  const runPrune = (dryRun: boolean) => {
    setMessage(null);
    client.prune(request(dryRun)).then((report) => {
      setPreview(report);
      if (!dryRun) reload();
    }, fail);
  };
  const togglePin = (record: CacheRecord) =>
    client.setPinned(record.id, !record.pinned).then(() => reload(), fail);
  const sortBy = (column: Column) =>
    setSort((old) => ({ column, descending: old.column === column ? !old.descending : true }));

  const records = usage ? sortRecords(usage.records, sort.column, sort.descending) : [];
  return (
    <section class="cache" data-testid="cache">
      {message && (
        <p class="notice" data-testid="cache-message">
          {message}
        </p>
      )}
      {usage && (
        <p data-testid="cache-totals">
          {usage.records.length} records, {formatBytes(usage.total)} in total, {formatBytes(usage.reclaimable)} reclaimable
        </p>
      )}
      <Treemap records={usage?.records ?? []} />
      <form class="prune toolbar" onSubmit={(e) => e.preventDefault()}>
        <label>
          <input
            type="checkbox"
            data-testid="prune-all"
            checked={options.all}
            onChange={(e) => setOptions({ ...options, all: (e.target as HTMLInputElement).checked })}
          />{' '}
          include image layers
        </label>
        <PruneField label="keep used within" placeholder="48h" value={options.keep_duration} onInput={(v) => setOptions({ ...options, keep_duration: v })} />
        <PruneField label="keep storage" placeholder="10GB" value={options.keep_storage} onInput={(v) => setOptions({ ...options, keep_storage: v })} />
        <PruneField label="filters" placeholder="type==regular" value={options.filters} onInput={(v) => setOptions({ ...options, filters: v })} />
        <button data-testid="prune-dry-run" onClick={() => runPrune(true)}>
          Preview prune
        </button>
        <button
          data-testid="prune-run"
          disabled={!preview?.dry_run || preview.deleted.length === 0}
          onClick={() => window.confirm(`Delete ${preview?.deleted.length} records?`) && runPrune(false)}
        >
          Prune
        </button>
      </form>
      {preview && <PrunePreview report={preview} />}
      <table data-testid="cache-table">
        <thead>
          <tr>
            {COLUMNS.map((c) => (
              <th key={c.key} data-testid={`sort-${c.key}`} class="sortable" onClick={() => sortBy(c.key)}>
                {c.label}
                {sort.column === c.key ? (sort.descending ? ' ▼' : ' ▲') : ''}
              </th>
            ))}
            <th>Pinned</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.id} data-record-id={r.id}>
              <td class="mono" title={r.id}>
                {r.id.slice(0, 12)}
              </td>
              <td>{r.type}</td>
              <td>{formatBytes(r.size)}</td>
              <td>{r.shared ? 'shared' : 'private'}</td>
              <td title={r.in_use ?? ''}>{r.in_use ? 'yes' : 'no'}</td>
              <td>{formatTime(r.created)}</td>
              <td>{formatTime(r.last_used)}</td>
              <td>{r.use_count}</td>
              <td class="mono">{r.builds.map((b) => b.slice(0, 8)).join(' ')}</td>
              <td>
                <button data-testid="pin" onClick={() => togglePin(r)}>
                  {r.pinned ? 'Unpin' : 'Pin'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {usage && <BuildShares records={usage.records} />}
    </section>
  );
}

function PruneField(props: { label: string; placeholder: string; value: string; onInput: (value: string) => void }) {
  return (
    <label>
      {props.label}{' '}
      <input
        size={10}
        placeholder={props.placeholder}
        value={props.value}
        onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
      />
    </label>
  );
}

function PrunePreview(props: { report: PruneReport }) {
  const { report } = props;
  const verb = report.dry_run ? 'would delete' : 'deleted';
  return (
    <div class="prune-preview" data-testid="prune-preview">
      <p>
        Prune {verb} {report.deleted.length} records, {formatBytes(report.reclaimed)}
        {report.blobs_deleted ? ` and ${report.blobs_deleted} unreferenced blobs (${formatBytes(report.blob_bytes)})` : ''}.
      </p>
      <table>
        <tbody>
          {report.deleted.map((r) => (
            <tr key={r.id} data-testid="prune-deleted">
              <td class="mono">{r.id.slice(0, 12)}</td>
              <td>{r.type}</td>
              <td>{formatBytes(r.size)}</td>
              <td>{verb}</td>
            </tr>
          ))}
          {report.kept.map((r) => (
            <tr key={r.id} data-testid="prune-kept">
              <td class="mono">{r.id.slice(0, 12)}</td>
              <td>{r.type}</td>
              <td>{formatBytes(r.size)}</td>
              <td class="reason">kept: {describeKeepReason(r.kept)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const MAP_WIDTH = 800;
const MAP_HEIGHT = 160;

function Treemap(props: { records: CacheRecord[] }) {
  const tiles = squarify(props.records, (r) => r.size, MAP_WIDTH, MAP_HEIGHT);
  if (!tiles.length) return null;
  return (
    <svg class="treemap" data-testid="treemap" viewBox={`0 0 ${MAP_WIDTH} ${MAP_HEIGHT}`} preserveAspectRatio="none">
      {tiles.map((t) => (
        <rect
          key={t.item.id}
          x={t.x}
          y={t.y}
          width={t.width}
          height={t.height}
          fill={TYPE_COLOURS[t.item.type] ?? '#9ca3af'}
          stroke="#fff"
          opacity={t.item.pinned ? 1 : 0.75}
        >
          <title>{`${t.item.id.slice(0, 12)} ${t.item.type} ${formatBytes(t.item.size)}${t.item.pinned ? ' (pinned)' : ''}`}</title>
        </rect>
      ))}
    </svg>
  );
}

function BuildShares(props: { records: CacheRecord[] }) {
  const builds = bytesByBuild(props.records);
  if (!builds.length) return null;
  return (
    <>
      <h3>Cache used by recent builds</h3>
      <table data-testid="cache-builds">
        <thead>
          <tr>
            <th>Build</th>
            <th>Records</th>
            <th>Size</th>
          </tr>
        </thead>
        <tbody>
          {builds.map((b) => (
            <tr key={b.build}>
              <td class="mono">{b.build}</td>
              <td>{b.records}</td>
              <td>{formatBytes(b.bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
