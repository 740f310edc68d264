// UPSTREAM_URL with a base path: an API behind a gateway's path prefix gets every call
// under that prefix — batch calls, single-lane calls and pass-through alike — and a URL the proxy
// cannot use stops it at start with one line naming UPSTREAM_URL.

import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { FakeUpstream } from '../fake-upstream/index.js';
import { runProxyToExit } from '../harness/process.js';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_base_path_app1';
const PREFIX = '/talkjs';
/** A gateway that serves the fake only below PREFIX (stripped on the way) and refuses anything else. */
let gateway: Server;
/** Every request target the gateway received, as received. */
const received: string[] = [];

// Registered before useProxy's, so it runs after the proxy has stopped.
afterAll(() => {
  gateway?.closeAllConnections();
  gateway?.close();
});

/** Starts the gateway in front of `upstream`; resolves with its port. */
async function startGateway(upstream: FakeUpstream): Promise<number> {
  gateway = createServer((req, res) => {
    const target = req.url ?? '';
    received.push(`${req.method} ${target}`);
    if (!target.startsWith(`${PREFIX}/`)) {
      req.resume();
      res.writeHead(421, { 'content-type': 'application/json' });
      res.end('{"error":"not below the gateway prefix"}');
      return;
    }
    const forwarded = request(
      `${upstream.url}${target.slice(PREFIX.length)}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forwarded);
  });
  gateway.listen(0, '127.0.0.1');
  await once(gateway, 'listening');
  return (gateway.address() as AddressInfo).port;
}

const { proxy, upstream } = useProxy(
  async ({ upstream }) => ({
    UPSTREAM_URL: `http://127.0.0.1:${await startGateway(upstream)}${PREFIX}`,
    LOG_LEVEL: 'info',
    // A lone op leaves as a single call (the single lane); ops queued together leave as one batch.
    SINGLE_OP_DIRECT: 'true',
    // Long enough that reads fired together are still queued together on a busy machine.
    BATCH_WINDOW_MS: '1000',
  }),
  { upstream: { apps: { app1: SECRET } } },
);

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${SECRET}`, ...headers } });

describe('UPSTREAM_URL with a base path', () => {
  it('sends batch, single-lane and pass-through calls below it', async () => {
    const batched = await Promise.all([get('/v1/app1/users/u1'), get('/v1/app1/users/u2')]);
    const single = await get('/v1/app1/users/u3');
    const passed = await get('/v1/app1/users/u4', { 'x-batch-bypass': '1' });
    // 404: the fake's store is empty; the gateway's own refusal would be 421.
    for (const res of [...batched, single, passed]) {
      await res.arrayBuffer();
      expect(res.status).toBe(404);
    }
    expect(batched.map((res) => res.headers.get('server-timing'))).toEqual([
      expect.stringContaining('batch;desc="2"'),
      expect.stringContaining('batch;desc="2"'),
    ]);
    expect(received).toEqual([
      `POST ${PREFIX}/v1/app1/batch`,
      `GET ${PREFIX}/v1/app1/users/u3`,
      `GET ${PREFIX}/v1/app1/users/u4`,
    ]);
    // Sorted: the fake runs a batch's ops in an order of its own, as the real API may.
    expect(upstream.executed.map((op) => [op.path, op.via]).sort()).toEqual([
      ['/users/u1', 'batch'],
      ['/users/u2', 'batch'],
      ['/users/u3', 'single'],
      ['/users/u4', 'single'],
    ]);
  });

  it('names the base path in its start line', async () => {
    const line = await proxy.waitForLine('"msg":"batch proxy listening"');
    expect(JSON.parse(line).upstream).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+${PREFIX}$`));
  });
});

describe('UPSTREAM_URL that is not http(s)', () => {
  it('exits 2 with one line naming the variable and the scheme rule', async () => {
    const result = await runProxyToExit({ UPSTREAM_URL: 'ftp://x', PORT: '0', ADMIN_PORT: '0' });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      'invalid configuration: UPSTREAM_URL: the scheme must be http or https, not ftp (got "ftp://x")',
    ]);
  });
});
