// The upstream client against a real HTTP server on loopback: the timeout is a hard deadline on the
// whole answer (issue #16, bug 4) and a buffered answer has a size bound (issue #15, item 10).

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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

async function serve(handler: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((_req, res) => handler(res));
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

  it('reads an answer within the bound', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[[0,200,{}]]');
    });
    const answer = await client(url, { maxResponseBytes: 10_000 }).call(request, undefined);
    expect(answer).toMatchObject({ status: 200, body: '[[0,200,{}]]' });
  });
});
