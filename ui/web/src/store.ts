// Client-side state of the live build, fed by WebSocket frames. It only
// stores what the server computed (nodes, layout, counts) plus the log
// lines, and notifies listeners once per applied frame.

import type { Counts, DagNode, Layout, LiveMessage, StampedEvent, Transfer } from './types';

export interface LogLine {
  text: string;
  stderr: boolean;
}

export interface Warning {
  message: string;
  line: number | null;
}

const EMPTY_COUNTS: Counts = { total: 0, running: 0, cached: 0, done: 0, failed: 0 };

export class LiveStore {
  buildId: string | null = null;
  running = false;
  finished: boolean | null = null;
  error: string | null = null;
  /** Node objects are replaced, never mutated, so views can compare by identity. */
  nodes = new Map<string, DagNode>();
  layout: Layout = { nodes: [], edges: [], width: 0, height: 0 };
  counts: Counts = EMPTY_COUNTS;
  /** Transfers by key, in the order they started; objects are replaced, never mutated. */
  transfers = new Map<string, Transfer>();
  logs = new Map<string, LogLine[]>();
  warnings: Warning[] = [];
  /** Increases on every applied frame. */
  version = 0;
  /** Increases whenever `nodes` gets a new or replaced node, so the graph can skip frames that only add log lines. */
  nodesVersion = 0;
  /** Increases whenever `transfers` changes, so the transfers strip can skip other frames. */
  transfersVersion = 0;
  /**
   * True while `enqueue`d frames are applied, inside an animation frame
   * callback or, in a hidden tab, the fallback timer.
   */
  inAnimationFrame = false;
  /** Unfinished last line of each vertex's stdout and stderr. */
  private partial = new Map<string, string>();
  private listeners = new Set<() => void>();
  private queued: LiveMessage[] = [];
  /** Pending animation frame and fallback timer of the scheduled flush; null when none is scheduled. */
  private scheduledFlush: { frame: number; timer: ReturnType<typeof setTimeout> } | null = null;

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(frame: LiveMessage[]): void {
    for (const message of frame) this.applyMessage(message);
    this.version += 1;
    for (const listener of this.listeners) listener();
  }

  /**
   * Queues a WebSocket frame and applies every queued frame at the next
   * animation frame, so a fast log costs one apply and one render per
   * displayed frame. A 250 ms timer flushes too, because hidden tabs get no
   * animation frames. Whichever fires first cancels the other, so a timer
   * left from an earlier flush never applies frames outside an animation
   * frame.
   */
  enqueue(frame: LiveMessage[]): void {
    for (const message of frame) this.queued.push(message);
    if (this.scheduledFlush) return;
    const flush = () => this.flushQueued();
    const frameHandle = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : 0;
    this.scheduledFlush = { frame: frameHandle, timer: setTimeout(flush, 250) };
  }

  private flushQueued(): void {
    const scheduled = this.scheduledFlush;
    if (!scheduled) return;
    this.scheduledFlush = null;
    clearTimeout(scheduled.timer);
    if (scheduled.frame && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(scheduled.frame);
    const messages = this.queued;
    this.queued = [];
    this.inAnimationFrame = true;
    try {
      this.apply(messages);
    } finally {
      this.inAnimationFrame = false;
    }
  }

  /** Log lines of one step, in arrival order. */
  linesOf(vertex: string): LogLine[] {
    return this.logs.get(vertex) ?? [];
  }

  private applyMessage(message: LiveMessage): void {
    switch (message.type) {
      case 'snapshot':
        this.reset();
        this.running = message.running;
        this.buildId = message.model.build_id;
        this.finished = message.model.finished;
        for (const node of message.model.nodes) this.nodes.set(node.id, node);
        for (const transfer of message.model.transfers) this.transfers.set(transfer.key, transfer);
        this.nodesVersion += 1;
        this.transfersVersion += 1;
        this.layout = message.layout;
        this.counts = message.counts;
        break;
      case 'event':
        this.applyEvent(message.event);
        break;
      case 'node':
        this.nodes.set(message.node.id, message.node);
        this.nodesVersion += 1;
        break;
      case 'transfer':
        this.transfers.set(message.transfer.key, message.transfer);
        this.transfersVersion += 1;
        break;
      case 'layout':
        this.layout = message.layout;
        break;
      case 'counts':
        this.counts = message.counts;
        this.finished = message.finished;
        break;
      case 'idle':
        this.running = false;
        break;
    }
  }

  private applyEvent(event: StampedEvent): void {
    switch (event.type) {
      case 'build_started':
        this.reset();
        this.running = true;
        this.buildId = event.build_id as string;
        break;
      case 'log':
        this.appendLog(event.vertex as string, event.stream === 'stderr', event.data as string);
        break;
      case 'warning': {
        const location = event.location as { start_line?: number } | undefined;
        this.warnings.push({ message: event.message as string, line: location?.start_line ?? null });
        break;
      }
      case 'build_finished':
        this.error = (event.error as string | undefined) ?? null;
        break;
    }
  }

  private appendLog(vertex: string, stderr: boolean, data: string): void {
    let lines = this.logs.get(vertex);
    if (!lines) {
      lines = [];
      this.logs.set(vertex, lines);
    }
    const key = `${vertex}\u0000${stderr ? 2 : 1}`;
    const parts = ((this.partial.get(key) ?? '') + data).split('\n');
    this.partial.set(key, parts.pop() ?? '');
    for (const text of parts) lines.push({ text, stderr });
  }

  /** Flushes unfinished lines, for a build that ended without a newline. */
  flushPartial(): void {
    for (const [key, text] of this.partial) {
      if (!text) continue;
      const [vertex, stream] = key.split('\u0000');
      const lines = this.logs.get(vertex) ?? [];
      lines.push({ text, stderr: stream === '2' });
      this.logs.set(vertex, lines);
    }
    this.partial.clear();
  }

  private reset(): void {
    this.nodes = new Map();
    this.nodesVersion += 1;
    this.layout = { nodes: [], edges: [], width: 0, height: 0 };
    this.counts = EMPTY_COUNTS;
    this.transfers = new Map();
    this.transfersVersion += 1;
    this.logs = new Map();
    this.partial = new Map();
    this.warnings = [];
    this.finished = null;
    this.error = null;
  }
}

/** Lines that contain `query`, case-insensitive, with their indexes. */
export function searchLines(lines: LogLine[], query: string): number[] {
  if (!query) return [];
  const needle = query.toLowerCase();
  const hits: number[] = [];
  lines.forEach((line, index) => {
    if (line.text.toLowerCase().includes(needle)) hits.push(index);
  });
  return hits;
}

/**
 * Search of a growing log that scans each line once: while the lines array
 * and the query stay the same, `update` only scans the lines appended since
 * the previous call. Another array (another step, a new build) or another
 * query starts a new scan.
 */
export class LogSearch {
  private lines: LogLine[] | null = null;
  private needle = '';
  private scanned = 0;
  private hits = new Set<number>();
  private firstHit = -1;

  /** Indexes of the lines that contain `query`, case-insensitive; empty for an empty query. */
  update(lines: LogLine[], query: string): ReadonlySet<number> {
    const needle = query.toLowerCase();
    if (lines !== this.lines || needle !== this.needle || lines.length < this.scanned) {
      this.lines = lines;
      this.needle = needle;
      this.scanned = 0;
      this.hits = new Set();
      this.firstHit = -1;
    }
    if (!needle) return this.hits;
    for (let index = this.scanned; index < lines.length; index++) {
      if (!lines[index].text.toLowerCase().includes(needle)) continue;
      this.hits.add(index);
      if (this.firstHit < 0) this.firstHit = index;
    }
    this.scanned = lines.length;
    return this.hits;
  }

  /** Index of the first matching line, or -1. */
  first(): number {
    return this.firstHit;
  }
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} m ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
