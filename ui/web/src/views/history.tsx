// Recorded builds (list, compare two, explain), the waterfall with its
// critical path and the result's layers.

import { useEffect, useState } from 'preact/hooks';
import type { Client } from '../client';
import { formatBytes, formatDuration } from '../store';
import type { HistoryEntry, Layer, Waterfall } from '../types';

function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: string } {
  const [result, setResult] = useState<{ data?: T; error?: string }>({});
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setResult({ data }),
      (error: Error) => live && setResult({ error: error.message }),
    );
    return () => {
      live = false;
    };
  }, deps);
  return result;
}

export function HistoryView(props: { client: Client; version: number; onOpen: (id: string) => void }) {
  const { data, error } = useLoad(() => props.client.history(), [props.version]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [detail, setDetail] = useState<{ title: string; body: unknown } | null>(null);
  const toggle = (id: string) =>
    setChosen((c) => (c.includes(id) ? c.filter((x) => x !== id) : [...c.slice(-1), id]));
  const show = (title: string, load: Promise<unknown>) =>
    load.then(
      (body) => setDetail({ title, body }),
      (e: Error) => setDetail({ title, body: e.message }),
    );

  if (error) return <p class="error">{error}</p>;
  return (
    <section class="history">
      <div class="toolbar">
        <button
          disabled={chosen.length !== 2}
          onClick={() => show('Comparison', props.client.compare(chosen[0], chosen[1]))}
        >
          Compare selected
        </button>
      </div>
      <table data-testid="history">
        <thead>
          <tr>
            <th />
            <th>Build</th>
            <th>Status</th>
            <th>Duration</th>
            <th>Cached</th>
            <th>Context</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(data ?? []).map((entry: HistoryEntry) => (
            <tr key={entry.id} class={`status-${entry.status}`}>
              <td>
                <input type="checkbox" checked={chosen.includes(entry.id)} onChange={() => toggle(entry.id)} />
              </td>
              <td class="mono">
                <a href="#" onClick={(e) => (e.preventDefault(), props.onOpen(entry.id))}>
                  {entry.id.slice(0, 12)}
                </a>
              </td>
              <td>{entry.status}</td>
              <td>{formatDuration(entry.duration_ms)}</td>
              <td>
                {entry.steps_cached}/{entry.steps_total} ({Math.round(entry.cached_share * 100)}%)
              </td>
              <td class="mono">{entry.context}</td>
              <td>
                <button onClick={() => show(`Why ${entry.id.slice(0, 12)} ran`, props.client.explain(entry.id))}>Explain</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {detail && (
        <div class="detail">
          <h3>{detail.title}</h3>
          <pre>{typeof detail.body === 'string' ? detail.body : JSON.stringify(detail.body, null, 2)}</pre>
        </div>
      )}
    </section>
  );
}

const KIND_COLOURS: Record<string, string> = {
  exec: '#3b82f6',
  file: '#14b8a6',
  source: '#f59e0b',
  export: '#a855f7',
};

export function WaterfallView(props: { client: Client; buildId: string | null; version: number }) {
  const { data, error } = useLoad<Waterfall | null>(
    () => (props.buildId ? props.client.waterfall(props.buildId) : Promise.resolve(null)),
    [props.buildId, props.version],
  );
  if (!props.buildId) return <p class="hint">Run or open a build to see its waterfall.</p>;
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="hint">Loading…</p>;
  const width = 900;
  const scale = data.total_ms > 0 ? width / data.total_ms : 1;
  return (
    <section class="waterfall">
      <p>
        Total {formatDuration(data.total_ms)} ·{' '}
        {data.split.map(([kind, ms]) => `${kind} ${formatDuration(ms)}`).join(' · ')}
      </p>
      <svg width={width + 260} height={data.lanes * 26 + 10}>
        {data.bars.map((bar) => (
          <g key={bar.id} transform={`translate(${bar.start_ms * scale},${bar.lane * 26})`}>
            <rect
              width={Math.max(2, (bar.end_ms - bar.start_ms) * scale)}
              height={20}
              fill={bar.failed ? '#e5484d' : KIND_COLOURS[bar.kind] ?? '#888'}
              opacity={bar.cached ? 0.4 : 1}
              stroke={bar.critical ? '#111' : 'none'}
              stroke-width={bar.critical ? 2 : 0}
              class={bar.critical ? 'critical' : ''}
            >
              <title>
                {bar.name} {formatDuration(bar.end_ms - bar.start_ms)}
              </title>
            </rect>
            <text x={4} y={14} class="bar-label">
              {bar.name.slice(0, 40)}
            </text>
          </g>
        ))}
      </svg>
    </section>
  );
}

export function LayersView(props: { client: Client; buildId: string | null; version: number }) {
  const { data, error } = useLoad<Layer[] | null>(
    () => (props.buildId ? props.client.layers(props.buildId) : Promise.resolve(null)),
    [props.buildId, props.version],
  );
  if (!props.buildId) return <p class="hint">Run or open a build to see its layers.</p>;
  if (error) return <p class="error">{error}</p>;
  const total = (data ?? []).reduce((sum, layer) => sum + layer.size, 0);
  return (
    <table class="layers" data-testid="layers">
      <thead>
        <tr>
          <th>#</th>
          <th>Snapshot</th>
          <th>Kind</th>
          <th>Size</th>
          <th>Compressed</th>
        </tr>
      </thead>
      <tbody>
        {(data ?? []).map((layer, index) => (
          <tr key={layer.snapshot}>
            <td>{index}</td>
            <td class="mono">{layer.snapshot.slice(0, 16)}</td>
            <td>{layer.kind}</td>
            <td>
              {formatBytes(layer.size)}
              <div class="size-bar" style={{ width: `${total ? (layer.size / total) * 200 : 0}px` }} />
            </td>
            <td>{formatBytes(layer.compressed_size)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
