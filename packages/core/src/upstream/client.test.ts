// The upstream client against a real HTTP server on loopback: the timeout is a hard deadline on the
// whole answer (issue #16, bug 4), a buffered answer has a size bound (issue #15, item 10), and the
// answer's shape (status, headers as `pool.request` parses them, UTF-8 body) is pinned down.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners, once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { UpstreamClient } from './client.js';

const servers: Server[] = [];
const clients: UpstreamClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
});

async function serve(handler: (res: ServerResponse, req: IncomingMessage) => void): Promise<string> {
  const server = createServer((req, res) => handler(res, req));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(url: string, options: { timeoutMs?: number; maxResponseBytes?: number } = {}) {
  const c = new UpstreamClient({ url, timeoutMs: options.timeoutMs ?? 5_000, ...options });
  clients.push(c);
  return c;
}

const request = { method: 'POST', path: '/v1/app/batch', headers: {}, body: '[]' };

async function failure(call: Promise<unknown>): Promise<ProxyError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('UpstreamClient.call', () => {
  it('gives up on an answer that drips past the timeout, though no single gap is that long', async () => {
    let drips = 0;
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      // One byte every 50 ms for 2 s: the idle timeouts alone never fire.
      const timer = setInterval(() => {
        drips++;
        if (drips === 40 || res.destroyed) {
          clearInterval(timer);
          res.end(']');
        } else res.write(' ');
      }, 50);
      res.on('close', () => clearInterval(timer));
    });
    const error = await failure(client(url, { timeoutMs: 300 }).call(request, undefined));
    expect(error.code).toBe('PROXY_UPSTREAM_TIMEOUT');
    expect(drips).toBeLessThan(40);
  });

  it('aborts when the caller signal fires', async () => {
    const url = await serve(() => {
      // Never answers.
    });
    const abort = new AbortController();
    const pending = client(url).call(request, undefined, abort.signal);
    abort.abort();
    expect((await failure(pending)).code).toBe('PROXY_UPSTREAM_TIMEOUT');
  });

  it('refuses an answer larger than its bound instead of buffering it', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`"${'x'.repeat(100_000)}"`);
    });
    const error = await failure(client(url, { maxResponseBytes: 10_000 }).call(request, undefined));
    expect(error.code).toBe('PROXY_UPSTREAM_BAD_RESPONSE');
  });

  it('counts the bound over the whole answer, not per chunk', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // 30 chunks of 500 bytes, each one well below the bound, 15 000 bytes together. Chunked
      // framing hands the client each write as its own piece, however TCP groups them.
      for (let i = 0; i < 30; i++) res.write(' '.repeat(500));
      res.end();
    });
    const error = await failure(client(url, { maxResponseBytes: 10_000 }).call(request, undefined));
    expect(error.code).toBe('PROXY_UPSTREAM_BAD_RESPONSE');
  });

  it('reads an answer within the bound', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[[0,200,{}]]');
    });
    const answer = await client(url, { maxResponseBytes: 10_000 }).call(request, undefined);
    expect(answer).toMatchObject({ status: 200, body: '[[0,200,{}]]' });
  });

  it('answers the status, the headers as pool.request parses them (repeated ones as arrays) and the body', async () => {
    const url = await serve((res) => {
      res.sendDate = false;
      // A raw list sends each line as written: the repeated names twice.
      res.writeHead(
        429,
        [
          ['Content-Type', 'application/json'],
          ['Retry-After', '3'],
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
          ['X-Dup', '1'],
          ['X-Dup', '2'],
        ].flat(),
      );
      res.end('{"error":"slow down"}');
    });
    const c = client(url);
    const answer = await c.call(request, undefined);
    expect(answer.status).toBe(429);
    expect(answer.body).toBe('{"error":"slow down"}');
    expect(answer.headers).toMatchObject({
      'content-type': 'application/json',
      'retry-after': '3',
      'set-cookie': ['a=1', 'b=2'],
      'x-dup': ['1', '2'],
    });
    // The same answer through pool.request (stream) has exactly the same headers object.
    const streamed = await c.stream({ ...request, body: undefined });
    await text(streamed.body);
    expect(answer.headers).toEqual(streamed.headers);
  });

  it('sends the method, path below the base path, headers, authorization and body', async () => {
    let seen: Pick<IncomingMessage, 'method' | 'url' | 'headers'> & { body?: string } = { headers: {} };
    const url = await serve((res, req) => {
      void text(req).then((body) => {
        seen = { method: req.method, url: req.url, headers: req.headers, body };
        res.end('[]');
      });
    });
    const c = client(`${url}/base/`);
    expect(c.url).toBe(`${url}/base`);
    const answer = await c.call(
      {
        method: 'PUT',
        path: '/v1/app/users/u1?x=1',
        headers: { 'content-type': 'application/json' },
        body: '{"a":1}',
      },
      'Bearer t',
    );
    expect(answer).toEqual({ status: 200, headers: expect.any(Object), body: '[]' });
    expect(seen).toMatchObject({
      method: 'PUT',
      url: '/base/v1/app/users/u1?x=1',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: 'Bearer t' },
    });
  });

  it('decodes UTF-8 split across chunks and reads an empty body as ""', async () => {
    const euro = Buffer.from('€', 'utf8');
    const url = await serve((res, req) => {
      if (req.url?.endsWith('/empty')) {
        res.writeHead(204).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      // The three bytes of '€' in two writes, the second only once the first is on the wire.
      res.write(Buffer.concat([Buffer.from('"'), euro.subarray(0, 1)]), () => {
        res.end(Buffer.concat([euro.subarray(1), Buffer.from('"')]));
      });
    });
    const c = client(url);
    expect((await c.call(request, undefined)).body).toBe('"€"');
    const empty = await c.call({ ...request, method: 'GET', path: '/empty', body: undefined }, undefined);
    expect(empty).toMatchObject({ status: 204, body: '' });
  });

  it('skips an informational 1xx answer and reads the final one', async () => {
    const url = await serve((res) => {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' }, () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('[1]');
      });
    });
    const answer = await client(url).call(request, undefined);
    expect(answer).toMatchObject({ status: 200, body: '[1]' });
    expect(answer.headers.link).toBeUndefined();
  });

  it('times out when the upstream never answers', async () => {
    const url = await serve(() => {
      // Never answers.
    });
    const error = await failure(client(url, { timeoutMs: 100 }).call(request, undefined));
    expect(error.code).toBe('PROXY_UPSTREAM_TIMEOUT');
    expect(error.status).toBe(504);
  });

  it('stops reading an unending answer once it passes the bound, and closes the connection', async () => {
    let closed: Promise<unknown> = Promise.resolve();
    const url = await serve((res) => {
      closed = once(res, 'close');
      res.writeHead(200, { 'content-type': 'application/json' });
      // Past the bound, and never ended: only a client that stops at the bound answers before the
      // (long) deadline, and only one that closes the connection lets this response close.
      res.write(`"${'x'.repeat(20_000)}`);
    });
    const error = await failure(
      client(url, { maxResponseBytes: 10_000, timeoutMs: 30_000 }).call(request, undefined),
    );
    expect(error.code).toBe('PROXY_UPSTREAM_BAD_RESPONSE');
    expect(error.status).toBe(502);
    await closed;
  });

  it('accepts an answer of exactly the bound', async () => {
    const url = await serve((res) => {
      res.end('x'.repeat(10_000));
    });
    const answer = await client(url, { maxResponseBytes: 10_000 }).call(request, undefined);
    expect(answer.body).toHaveLength(10_000);
  });

  it('fails at once when the signal is already aborted', async () => {
    const url = await serve((res) => res.end('[]'));
    const signal = AbortSignal.abort();
    expect((await failure(client(url).call(request, undefined, signal))).code).toBe('PROXY_UPSTREAM_TIMEOUT');
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('aborts while the body is arriving, closing the connection', async () => {
    let closed: Promise<unknown> = Promise.resolve();
    const url = await serve((res) => {
      closed = once(res, 'close');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
    });
    const abort = new AbortController();
    // undici publishes the response head on this channel; abort once the client has taken it.
    const onHeaders = (message: unknown) => {
      if ((message as { request: { path: string } }).request.path === '/v1/app/batch/during') {
        setImmediate(() => abort.abort());
      }
    };
    subscribe('undici:request:headers', onHeaders);
    try {
      const pending = client(url).call({ ...request, path: '/v1/app/batch/during' }, undefined, abort.signal);
      expect((await failure(pending)).code).toBe('PROXY_UPSTREAM_TIMEOUT');
    } finally {
      unsubscribe('undici:request:headers', onHeaders);
    }
    await closed;
  });

  it("fails with the signal's reason when it is a ProxyError (the scheduler's abandon)", async () => {
    const url = await serve(() => {
      // Never answers.
    });
    const abort = new AbortController();
    const reason = new ProxyError('PROXY_DRAINING', 'the proxy is shutting down');
    const pending = client(url).call(request, undefined, abort.signal);
    abort.abort(reason);
    expect(await failure(pending)).toBe(reason);
  });

  it('leaves no listener on a long-lived signal, whatever the outcome', async () => {
    const url = await serve((res, req) => {
      if (req.url?.endsWith('/slow')) return; // never answers
      res.writeHead(req.url?.endsWith('/bad') ? 500 : 200).end('[]');
    });
    const c = client(url, { timeoutMs: 100 });
    const signal = new AbortController().signal;
    await c.call(request, undefined, signal);
    await c.call({ ...request, path: '/bad' }, undefined, signal);
    await failure(c.call({ ...request, path: '/slow' }, undefined, signal));
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('takes many calls at once on one signal without a listener warning on stderr', async () => {
    // Node warns (plain text on stderr, breaking JSON-only log parsing) once an EventTarget has
    // more than 10 listeners of one type: one per call in flight on the shared shutdown signal did.
    const calls = 25;
    let arrived = 0;
    let allArrived: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      allArrived = resolve;
    });
    const waiting: ServerResponse[] = [];
    const url = await serve((res) => {
      waiting.push(res);
      if (++arrived === calls) allArrived();
    });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const c = client(url);
      const abort = new AbortController();
      const pending = Array.from({ length: calls }, (_, i) =>
        c.call({ ...request, path: `/v1/app/batch/${i}` }, undefined, abort.signal),
      );
      // Every call is on the wire, so each one has taken its hold on the signal.
      await held;
      for (const res of waiting.splice(0, calls - 1)) res.end('[]');
      const answered = await Promise.all(pending.slice(0, calls - 1));
      expect(answered.every((answer) => answer.status === 200)).toBe(true);
      // The signal still reaches a call in flight, and then none is left listening.
      abort.abort();
      expect((await failure(pending[calls - 1] as Promise<unknown>)).code).toBe('PROXY_UPSTREAM_TIMEOUT');
      expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
      // process.emitWarning emits on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).toEqual([]);
  });

  it('maps a refused connection to 502 PROXY_UPSTREAM_UNAVAILABLE', async () => {
    const url = await serve(() => {});
    const server = servers.pop();
    await new Promise((resolve) => server?.close(resolve));
    const error = await failure(client(url).call(request, undefined));
    expect(error.code).toBe('PROXY_UPSTREAM_UNAVAILABLE');
    expect(error.status).toBe(502);
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('maps a connection dropped mid-body to 502 PROXY_UPSTREAM_UNAVAILABLE', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('[1,', () => res.socket?.destroy());
    });
    const error = await failure(client(url).call(request, undefined));
    expect(error.code).toBe('PROXY_UPSTREAM_UNAVAILABLE');
  });

  it('maps a call cut by destroy() to 502 PROXY_UPSTREAM_UNAVAILABLE', async () => {
    let received: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      received = resolve;
    });
    const url = await serve(() => received());
    const c = client(url);
    const pending = failure(c.call(request, undefined));
    await arrived;
    await c.destroy();
    expect((await pending).code).toBe('PROXY_UPSTREAM_UNAVAILABLE');
  });
});
