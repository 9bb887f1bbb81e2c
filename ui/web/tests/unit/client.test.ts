import { describe, expect, it, vi } from 'vitest';
import { ApiError, Client, HttpTransport, TauriTransport, type TauriCore } from '../../src/client';

function fakeFetch(status: number, body: unknown) {
  return vi.fn(async (_url: string | URL | Request, _init?: RequestInit) =>
    new Response(typeof body === 'string' ? body : JSON.stringify(body), { status }),
  );
}

describe('HttpTransport', () => {
  it('sends the token header and JSON body', async () => {
    const fetchImpl = fakeFetch(200, { build_id: 'b1' });
    const client = new Client(new HttpTransport('http://127.0.0.1:9', 'tok', fetchImpl as typeof fetch));
    const result = await client.startBuild({ project: '/p', target: 'build' });
    expect(result.build_id).toBe('b1');
    const [url, init] = fetchImpl.mock.calls[0];
    expect(url).toBe('http://127.0.0.1:9/api/builds');
    expect(init?.method).toBe('POST');
    expect((init?.headers as Record<string, string>)['x-strata-token']).toBe('tok');
    expect(JSON.parse(init?.body as string)).toEqual({ project: '/p', target: 'build' });
  });

  it('turns an error body into ApiError', async () => {
    const fetchImpl = fakeFetch(409, { code: 'conflict', message: 'A build is already running' });
    const client = new Client(new HttpTransport('', 't', fetchImpl as typeof fetch));
    const error = await client.cancelBuild().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('conflict');
    expect((error as ApiError).status).toBe(409);
    expect((error as ApiError).message).toBe('A build is already running');
  });

  it('reports a plain-text failure with method and path', async () => {
    const fetchImpl = fakeFetch(502, 'Bad gateway');
    const client = new Client(new HttpTransport('', 't', fetchImpl as typeof fetch));
    const error = (await client.history().catch((e: unknown) => e)) as ApiError;
    expect(error.code).toBe('http_error');
    expect(error.message).toContain('GET /api/history');
  });

  it('rejects a successful response that is not JSON', async () => {
    const fetchImpl = fakeFetch(200, '<!doctype html>');
    const client = new Client(new HttpTransport('', 't', fetchImpl as typeof fetch));
    const error = (await client.demos().catch((e: unknown) => e)) as ApiError;
    expect(error.code).toBe('invalid_response');
    expect(error.message).toContain('GET /api/demos');
  });

  it('encodes ids and vertices in paths', async () => {
    const fetchImpl = fakeFetch(200, []);
    const client = new Client(new HttpTransport('', 't', fetchImpl as typeof fetch));
    await client.logs('a/b', 'sha256:00');
    expect(fetchImpl.mock.calls[0][0]).toBe('/api/history/a%2Fb/logs?vertex=sha256%3A00');
  });
});

describe('TauriTransport', () => {
  function fakeCore(invoke: TauriCore['invoke']): TauriCore {
    class Channel<T> {
      onmessage: (message: T) => void = () => {};
    }
    return { invoke, Channel: Channel as TauriCore['Channel'] };
  }

  it('invokes api_request with method, path and body', async () => {
    const invoke = vi.fn(async () => ({ version: '0.1.0' })) as unknown as TauriCore['invoke'];
    const client = new Client(new TauriTransport(fakeCore(invoke)));
    await client.status();
    expect(invoke).toHaveBeenCalledWith('api_request', { method: 'GET', path: '/api/status', body: null });
  });

  it('maps a rejected invoke to ApiError', async () => {
    const invoke = vi.fn(async () => {
      throw { code: 'not_found', message: 'Build `x` not found' };
    }) as unknown as TauriCore['invoke'];
    const client = new Client(new TauriTransport(fakeCore(invoke)));
    const error = (await client.inspect('x').catch((e: unknown) => e)) as ApiError;
    expect(error.code).toBe('not_found');
  });

  it('delivers channel frames until unsubscribed', async () => {
    let channel: { onmessage: (m: unknown) => void } | undefined;
    const invoke = vi.fn(async (_command: string, args?: Record<string, unknown>) => {
      channel = args?.channel as typeof channel;
      return undefined;
    }) as unknown as TauriCore['invoke'];
    const frames: unknown[] = [];
    const stop = new TauriTransport(fakeCore(invoke)).subscribe((frame) => frames.push(frame));
    channel!.onmessage([{ type: 'idle' }]);
    stop();
    channel!.onmessage([{ type: 'idle' }]);
    expect(frames).toHaveLength(1);
  });
});

describe('seams', () => {
  it('watch rejects as not available', async () => {
    const client = new Client(new HttpTransport('', 't', fakeFetch(200, {}) as typeof fetch));
    const error = (await client.watch('/p').catch((e: unknown) => e)) as ApiError;
    expect(error.code).toBe('not_available');
  });
});
