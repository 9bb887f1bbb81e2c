// The one module that talks to the engine. Two transports share the same
// request and event shapes: Tauri IPC inside the desktop shell, HTTP plus
// one WebSocket in a browser (`strata ui`).

import type {
  BuildParameters,
  CacheRecord,
  CacheUsage,
  PruneReport,
  PruneRequest,
  Demo,
  HistoryEntry,
  Layer,
  LiveMessage,
  LogChunk,
  OpenedProject,
  Status,
  Waterfall,
} from './types';

/** A failed request, with the server's `{code, message}` body. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

export type Method = 'GET' | 'POST';
export type FrameHandler = (messages: LiveMessage[]) => void;

export interface Transport {
  request<T>(method: Method, path: string, body?: unknown): Promise<T>;
  /** Calls `onFrame` for every event frame until the returned function runs. */
  subscribe(onFrame: FrameHandler, onState?: (connected: boolean) => void): () => void;
}

/** Browser transport: `fetch` for requests, a WebSocket for events. */
export class HttpTransport implements Transport {
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly fetchImpl: typeof fetch = (...args) => fetch(...args),
  ) {}

  async request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const response = await this.fetchImpl(this.base + path, {
      method,
      headers: {
        'x-strata-token': this.token,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // A proxy or a crashed server can respond with plain text.
    }
    if (!response.ok) {
      const error = parsed as { code?: string; message?: string } | undefined;
      throw new ApiError(
        error?.code ?? 'http_error',
        error?.message ?? `Request \`${method} ${path}\` failed with status ${response.status}`,
        response.status,
      );
    }
    if (text && parsed === undefined) {
      throw new ApiError('invalid_response', `Request \`${method} ${path}\` returned a response that is not JSON: is this a Strata workbench server?`, response.status);
    }
    return parsed as T;
  }

  subscribe(onFrame: FrameHandler, onState?: (connected: boolean) => void): () => void {
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const url = `${this.base.replace(/^http/, 'ws')}/api/events?token=${encodeURIComponent(this.token)}`;
    const connect = () => {
      socket = new WebSocket(url);
      socket.onopen = () => onState?.(true);
      socket.onmessage = (message) => onFrame(JSON.parse(message.data as string) as LiveMessage[]);
      socket.onclose = () => {
        onState?.(false);
        // The server restarts or the laptop sleeps: reconnect, and the
        // first frame is a full snapshot.
        if (!stopped) retry = setTimeout(connect, 1000);
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(retry);
      socket?.close();
    };
  }
}

/** The parts of `@tauri-apps/api/core` this module uses. */
export interface TauriCore {
  invoke<T>(command: string, args?: Record<string, unknown>): Promise<T>;
  Channel: new <T>() => { onmessage: (message: T) => void };
}

/**
 * Desktop transport: the shell exposes the same API as two commands,
 * `api_request {method, path, body}` and `api_subscribe {channel}`, and
 * rejects with the same `{code, message}` body.
 */
export class TauriTransport implements Transport {
  constructor(private readonly core: TauriCore) {}

  async request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    try {
      return await this.core.invoke<T>('api_request', { method, path, body: body ?? null });
    } catch (error) {
      const failure = error as { code?: string; message?: string };
      throw new ApiError(failure.code ?? 'ipc_error', failure.message ?? String(error));
    }
  }

  subscribe(onFrame: FrameHandler, onState?: (connected: boolean) => void): () => void {
    const channel = new this.core.Channel<LiveMessage[]>();
    let stopped = false;
    channel.onmessage = (frame) => {
      if (!stopped) onFrame(frame);
    };
    this.core.invoke('api_subscribe', { channel }).then(
      () => onState?.(true),
      () => onState?.(false),
    );
    return () => {
      stopped = true;
    };
  }
}

const enc = encodeURIComponent;

/** Typed API over a transport. */
export class Client {
  constructor(readonly transport: Transport) {}

  status = () => this.transport.request<Status>('GET', '/api/status');
  demos = () => this.transport.request<Demo[]>('GET', '/api/demos');
  openProject = (path: string) =>
    this.transport.request<OpenedProject>('POST', '/api/projects/open', { path });
  startBuild = (parameters: BuildParameters) =>
    this.transport.request<{ build_id: string }>('POST', '/api/builds', parameters);
  cancelBuild = () => this.transport.request<{ canceled: boolean }>('POST', '/api/builds/cancel');
  subscribe = (onFrame: FrameHandler, onState?: (connected: boolean) => void) =>
    this.transport.subscribe(onFrame, onState);

  history = () => this.transport.request<HistoryEntry[]>('GET', '/api/history');
  inspect = (id: string) => this.transport.request<Record<string, unknown>>('GET', `/api/history/${enc(id)}`);
  explain = (id: string) =>
    this.transport.request<{ build: string; previous: string | null; steps: { vertex: string; step: string; reasons: Record<string, unknown>[] }[] }>(
      'GET',
      `/api/history/${enc(id)}/explain`,
    );
  compare = (base: string, other: string) =>
    this.transport.request<Record<string, unknown>>('GET', `/api/history/compare?base=${enc(base)}&other=${enc(other)}`);
  waterfall = (id: string) => this.transport.request<Waterfall>('GET', `/api/history/${enc(id)}/waterfall`);
  historyModel = (id: string) =>
    this.transport.request<Extract<LiveMessage, { type: 'snapshot' }>>('GET', `/api/history/${enc(id)}/model`);
  logs = (id: string, vertex?: string) =>
    this.transport.request<LogChunk[]>(
      'GET',
      `/api/history/${enc(id)}/logs${vertex ? `?vertex=${enc(vertex)}` : ''}`,
    );
  layers = (id: string) => this.transport.request<Layer[]>('GET', `/api/history/${enc(id)}/layers`);

  cacheUsage = () => this.transport.request<CacheUsage>('GET', '/api/cache/du');
  /** Runs a prune, or with `dry_run` reports what it would delete and why the rest stays. */
  prune = (request: PruneRequest) => this.transport.request<PruneReport>('POST', '/api/cache/prune', request);
  setPinned = (id: string, pinned: boolean) =>
    this.transport.request<{ record: CacheRecord }>('POST', '/api/cache/pin', { id, pinned });
  /** Seam: rebuild on file changes, once `strata watch` is in the engine. */
  watch = (_project: string): Promise<never> =>
    Promise.reject(new ApiError('not_available', 'Watching a project is not available in this build of Strata'));
}

/** Picks the transport for where the UI runs. */
export async function createClient(win: Window = window): Promise<Client> {
  if ('__TAURI_INTERNALS__' in win) {
    const core = (await import('@tauri-apps/api/core')) as unknown as TauriCore;
    return new Client(new TauriTransport(core));
  }
  const token = new URLSearchParams(win.location.search).get('token') ?? '';
  return new Client(new HttpTransport(win.location.origin, token));
}
