// SPEC §8b against the real proxy process: only UPSTREAM_URL is ever contacted (no open proxy),
// hop-by-hop headers are stripped, slow clients are cut off, secrets stay out of logs and metrics,
// and the admin listener is separate from the data listener.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAppToken } from '../fake-upstream/index.js';
import { buildRequest, exchange, header, parseResponse, type RawResponse } from '../fuzz/raw-http.js';
import type { ProxyProcess } from '../harness/process.js';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_sec_app1_LEAKCANARY';
const APPS = { app1: SECRET };
const AUTH = `Bearer ${SECRET}`;
/** Server timeouts the slow-client tests need to finish quickly (see the report on §8b). */
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server that must never be contacted: counts connections and requests. */
interface Evil {
  server: Server;
  port: number;
  connections: number;
  requests: number;
}

let echo: Server;
let echoHost: string;
const echoed: Recorded[] = [];
let evil: Evil;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

beforeAll(async () => {
  const evilServer = createServer((_req, res) => {
    evil.requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"evil":true}');
  });
  evil = { server: evilServer, port: 0, connections: 0, requests: 0 };
  evilServer.on('connection', () => {
    evil.connections++;
  });
  evil.port = await listen(evilServer);

  // A raw upstream that records exactly what reaches it and answers with hop-by-hop headers of its own.
  echo = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      echoed.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const payload = JSON.stringify({ echoed: true, method: req.method, url: req.url, body });
      res.writeHead(200, {
        // No Content-Length: chunked, so the Trailer header is legal.
        'content-type': 'application/json',
        connection: 'X-Upstream-Hop',
        'x-upstream-hop': 'must-not-reach-the-caller',
        'keep-alive': 'timeout=77, max=77',
        'proxy-authenticate': 'Basic realm="upstream"',
        trailer: 'X-Checksum',
        'x-upstream-end': 'kept',
      });
      res.end(payload);
    });
  });
  const echoPort = await listen(echo);
  echoHost = `127.0.0.1:${echoPort}`;
});

// Registered first, so it runs after the proxies have stopped.
afterAll(async () => {
  await Promise.all([closeServer(echo), closeServer(evil?.server)]);
});

const { proxy, upstream } = useProxy(
  {
    LOG_LEVEL: 'debug',
    // A line for every call (the default samples successes): the leak test looks for each one.
    ACCESS_LOG: 'all',
    BATCH_WINDOW_MS: '5',
    UPSTREAM_TIMEOUT_MS: '2000',
    HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  },
  { upstream: { apps: APPS }, exitCode: 0 },
);
const { proxy: echoProxy } = useProxy(() => ({ UPSTREAM_URL: `http://${echoHost}`, LOG_LEVEL: 'warn' }), {
  exitCode: 0,
});

beforeAll(async () => {
  const seeded = await fetch(`${upstream.url}/v1/app1/users/sec-user`, {
    method: 'PUT',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Sec', custom: { tag: 'from-upstream' } }),
  });
  expect(seeded.status).toBe(200);
});

/** One raw request on a fresh connection (`Connection: close`), its parsed answer. */
async function raw(
  target: ProxyProcess,
  method: string,
  requestTarget: string,
  headers: Array<[string, string]>,
  body = '',
): Promise<RawResponse> {
  const extra: Array<[string, string]> = [['Connection', 'close']];
  if (!headers.some(([n]) => n.toLowerCase() === 'host')) extra.push(['Host', 'proxy.test']);
  if (body) extra.push(['Content-Length', String(Buffer.byteLength(body))]);
  const ex = await exchange(target.url, buildRequest(method, requestTarget, [...headers, ...extra], body));
  const res = parseResponse(ex.data);
  expect(res, `no HTTP answer to ${method} ${requestTarget}: ${ex.data.toString('latin1')}`).toBeDefined();
  return res as RawResponse;
}

function json(res: RawResponse): unknown {
  return JSON.parse(res.body.toString('utf8'));
}

describe('only UPSTREAM_URL is ever contacted', () => {
  const evilOrigin = () => `http://127.0.0.1:${evil.port}`;

  it('serves an absolute-form request target from UPSTREAM_URL, never from the host it names', async () => {
    const before = upstream.executed.length;
    const host: [string, string] = ['Host', `127.0.0.1:${evil.port}`];
    const batched = await raw(proxy, 'GET', `${evilOrigin()}/v1/app1/users/sec-user`, [
      host,
      ['Authorization', AUTH],
    ]);
    expect(batched.status).toBe(200);
    expect(json(batched)).toMatchObject({ id: 'sec-user', custom: { tag: 'from-upstream' } });

    const passed = await raw(proxy, 'GET', `${evilOrigin()}/v1/app1/users/sec-user`, [
      host,
      ['Authorization', AUTH],
      ['X-Batch-Bypass', '1'],
    ]);
    expect(passed.status).toBe(200);
    expect(json(passed)).toMatchObject({ id: 'sec-user' });

    const clientBatch = await raw(
      proxy,
      'POST',
      `${evilOrigin()}/v1/app1/batch`,
      [host, ['Authorization', AUTH], ['Content-Type', 'application/json']],
      JSON.stringify([[1, 'GET', '/users/sec-user', {}]]),
    );
    expect(clientBatch.status).toBe(200);
    expect(json(clientBatch)).toEqual([[1, 200, expect.objectContaining({ id: 'sec-user' })]]);

    // Not an app path: passed through, still to UPSTREAM_URL (the fake's own 404 for an unknown route).
    const other = await raw(proxy, 'GET', `${evilOrigin()}/admin/steal?x=1`, [host]);
    expect(other.status).toBe(404);
    expect(json(other)).toBe('Could not find route GET /admin/steal');

    // A scheme other than http, and a protocol-relative origin-form target.
    const https = await raw(proxy, 'GET', `https://127.0.0.1:${evil.port}/v1/app1/users/sec-user`, [
      host,
      ['Authorization', AUTH],
    ]);
    expect(https.status).toBe(200);
    expect(json(https)).toMatchObject({ id: 'sec-user' });
    const slashes = await raw(proxy, 'GET', `//127.0.0.1:${evil.port}/v1/app1/users/sec-user`, [
      host,
      ['Authorization', AUTH],
    ]);
    expect(slashes.status).toBeLessThan(500);
    expect(JSON.stringify(json(slashes))).not.toContain('evil');

    expect(upstream.executed.length - before).toBeGreaterThanOrEqual(4);
    expect(evil.connections).toBe(0);
    expect(evil.requests).toBe(0);
  });

  it('ignores a foreign Host header: the upstream call carries UPSTREAM_URL’s host', async () => {
    const res = await raw(proxy, 'GET', '/v1/app1/users/sec-user', [
      ['Host', `127.0.0.1:${evil.port}`],
      ['Authorization', AUTH],
      ['X-Forwarded-Host', `127.0.0.1:${evil.port}`],
    ]);
    expect(res.status).toBe(200);
    expect(json(res)).toMatchObject({ id: 'sec-user' });

    echoed.length = 0;
    const viaEcho = await raw(echoProxy, 'GET', '/v1/app1/users/anyone', [
      ['Host', `127.0.0.1:${evil.port}`],
      ['Authorization', AUTH],
      ['X-Batch-Bypass', '1'],
    ]);
    expect(viaEcho.status).toBe(200);
    expect(echoed).toHaveLength(1);
    expect(echoed[0]?.headers.host).toBe(echoHost);
    expect(evil.connections).toBe(0);
  });

  it('never tunnels a CONNECT request', async () => {
    const ex = await exchange(
      proxy.url,
      buildRequest('CONNECT', `127.0.0.1:${evil.port}`, [['Host', `127.0.0.1:${evil.port}`]]),
      { timeoutMs: 3000 },
    );
    expect(ex.closed).toBe(true);
    const res = parseResponse(ex.data);
    if (res) expect(res.status).toBeGreaterThanOrEqual(400);
    expect(evil.connections).toBe(0);
  });
});

describe('hop-by-hop headers on pass-through', () => {
  const hopHeaders: Array<[string, string]> = [
    ['Host', 'caller.example'],
    ['Authorization', AUTH],
    ['Connection', 'close, X-Hop-Secret'],
    ['X-Hop-Secret', 'named-by-connection'],
    ['Keep-Alive', 'timeout=99'],
    ['TE', 'trailers'],
    ['Upgrade', 'h2c'],
    ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'],
    ['Proxy-Connection', 'keep-alive'],
    ['X-End-To-End', 'kept'],
  ];

  function expectStripped(seen: Recorded | undefined): void {
    expect(seen).toBeDefined();
    const h = seen?.headers ?? {};
    expect(h['x-end-to-end']).toBe('kept');
    expect(h.authorization).toBe(AUTH);
    expect(h.host).toBe(echoHost);
    for (const name of [
      'x-hop-secret',
      'keep-alive',
      'te',
      'upgrade',
      'proxy-authorization',
      'proxy-connection',
    ]) {
      expect(h[name], `${name} was forwarded`).toBeUndefined();
    }
    expect(String(h.connection ?? '')).not.toMatch(/x-hop-secret/i);
  }

  function expectResponseStripped(res: RawResponse): void {
    expect(header(res, 'x-upstream-end')).toBe('kept');
    expect(header(res, 'x-upstream-hop')).toBeUndefined();
    expect(header(res, 'proxy-authenticate')).toBeUndefined();
    expect(header(res, 'trailer')).toBeUndefined();
    expect(header(res, 'keep-alive') ?? '').not.toContain('77');
    expect(header(res, 'connection') ?? '').not.toMatch(/x-upstream-hop/i);
  }

  it('strips them from a GET, including the headers Connection names, both ways', async () => {
    echoed.length = 0;
    const ex = await exchange(echoProxy.url, buildRequest('GET', '/v1/app1/users/hop?x=1', hopHeaders), {
      timeoutMs: 3000,
    });
    const res = parseResponse(ex.data);
    expect(res, ex.data.toString('latin1')).toBeDefined();
    expect(res?.status).toBe(200);
    expect(echoed).toHaveLength(1);
    expect(echoed[0]?.url).toBe('/v1/app1/users/hop?x=1');
    expectStripped(echoed[0]);
    if (res) expectResponseStripped(res);
  });

  it('strips them from a streamed POST with a body, which arrives intact', async () => {
    echoed.length = 0;
    const body = 'plain text body, not JSON: passed through as is';
    const ex = await exchange(
      echoProxy.url,
      buildRequest(
        'POST',
        '/v1/app1/conversations/c/messages',
        [...hopHeaders, ['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]],
        body,
      ),
      { timeoutMs: 3000 },
    );
    const res = parseResponse(ex.data);
    expect(res, ex.data.toString('latin1')).toBeDefined();
    expect(res?.status).toBe(200);
    expect(echoed[0]?.body).toBe(body);
    expectStripped(echoed[0]);
    if (res) expectResponseStripped(res);
  });
});

/**
 * Writes `head`, then one byte of `trickle` every `everyMs`, until the server closes the connection
 * or `giveUpMs` passes. Resolves with when it was closed (undefined: never) and what it answered.
 */
function trickle(
  base: string,
  head: string,
  drip: string,
  everyMs: number,
  giveUpMs: number,
): Promise<{ closedAfterMs: number | undefined; answer: string }> {
  const url = new URL(base);
  const started = performance.now();
  return new Promise((resolve) => {
    let answer = '';
    let i = 0;
    let done = false;
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearInterval(dripper);
      clearTimeout(limit);
      socket.destroy();
      resolve({ closedAfterMs: closed ? performance.now() - started : undefined, answer });
    };
    const dripper = setInterval(() => {
      if (drip.length > 0 && !socket.destroyed) socket.write(drip[i++ % drip.length] ?? '');
    }, everyMs);
    const limit = setTimeout(() => finish(false), giveUpMs);
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
    });
    socket.on('error', () => finish(true));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => socket.write(head));
  });
}

describe.concurrent('slow and idle clients (HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS)', () => {
  const giveUpMs = REQUEST_TIMEOUT_MS + 2500;

  it('cuts off a client that sends its headers byte by byte (slowloris)', async () => {
    const r = await trickle(
      proxy.url,
      'GET /v1/app1/users/sec-user HTTP/1.1\r\nHost: x\r\n',
      'X-Slow-Header-Padding: abcdefghijklmnopqrstuvwxyz\r\n',
      50,
      giveUpMs,
    );
    expect(r.closedAfterMs, 'the connection was still open').toBeDefined();
    expect(r.closedAfterMs ?? Number.POSITIVE_INFINITY).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
    if (r.answer) expect(r.answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('cuts off a client that sends its body byte by byte', async () => {
    const r = await trickle(
      proxy.url,
      `PUT /v1/app1/users/slow HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"name":"`,
      'a',
      50,
      giveUpMs,
    );
    expect(r.closedAfterMs, 'the connection was still open').toBeDefined();
    expect(r.closedAfterMs ?? Number.POSITIVE_INFINITY).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);
    expect(upstream.executed.some((e) => e.path === '/users/slow')).toBe(false);
  });

  it('closes a connection that never sends a request', async () => {
    const r = await trickle(proxy.url, '', '', 1000, giveUpMs);
    expect(r.closedAfterMs, 'the connection was still open').toBeDefined();
    expect(r.closedAfterMs ?? Number.POSITIVE_INFINITY).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
  });
});

describe('size limits', () => {
  it('refuses request headers over the limit with 431 and keeps serving', async () => {
    const res = await raw(proxy, 'GET', '/v1/app1/users/sec-user', [
      ['Authorization', AUTH],
      ['X-Huge', 'h'.repeat(20_000)],
    ]);
    expect(res.status).toBe(431);
    const after = await raw(proxy, 'GET', '/v1/app1/users/sec-user', [['Authorization', AUTH]]);
    expect(after.status).toBe(200);
  });
});

describe('secrets', () => {
  it('keeps every Authorization value out of the logs and metrics, even at LOG_LEVEL=debug', async () => {
    const jwt = signAppToken('app1', SECRET, { expiresInSec: 600 });
    const badToken = 'leak-canary-bad-token';
    const proxyAuth = 'Basic bGVhay1jYW5hcnk6cHJveHk=';
    const h = (id: string, auth: string, extra: Record<string, string> = {}) => ({
      authorization: auth,
      'x-request-id': id,
      ...extra,
    });
    const get = (id: string, auth: string, extra?: Record<string, string>) =>
      fetch(`${proxy.url}/v1/app1/users/sec-user`, { headers: h(id, auth, extra) }).then((r) => r.text());

    await get('log-batched-key', AUTH);
    await get('log-batched-jwt', `Bearer ${jwt}`);
    await get('log-upstream-401', `Bearer ${badToken}`);
    await get('log-passthrough', AUTH, { 'x-batch-bypass': '1' });
    await get('log-proxy-auth', AUTH, { 'proxy-authorization': proxyAuth });
    await fetch(`${proxy.url}/v1/app1/batch`, {
      method: 'POST',
      headers: h('log-client-batch', `Bearer ${jwt}`, { 'content-type': 'application/json' }),
      body: JSON.stringify([[1, 'GET', '/users/sec-user', {}]]),
    }).then((r) => r.text());
    await fetch(`${proxy.url}/v1/app1/users/x`, {
      method: 'PUT',
      headers: h('log-bad-json', `Bearer ${jwt}`, { 'content-type': 'application/json' }),
      body: '{"name":',
    }).then((r) => r.text());
    upstream.faults.queue.push({ reset: 'before-execute' }, { reset: 'before-execute' });
    await fetch(`${proxy.url}/v1/app1/conversations/c/messages`, {
      method: 'POST',
      headers: h('log-upstream-reset', `Bearer ${jwt}`, { 'content-type': 'application/json' }),
      body: JSON.stringify([{ text: 'x', type: 'SystemMessage' }]),
    }).then((r) => r.text());
    upstream.faults.queue.push({ on: 'single', reset: 'before-execute' });
    await get('log-passthrough-reset', AUTH, { 'x-batch-bypass': '1' });
    await raw(proxy, 'GET', '/v1/app1/../app2/users/x', [
      ['Authorization', `Bearer ${jwt}`],
      ['X-Request-Id', 'log-traversal'],
    ]);
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();

    const logs = proxy.logs();
    // The logs are on and name these requests, so their absence of secrets means something.
    for (const id of ['log-batched-key', 'log-passthrough', 'log-upstream-reset', 'log-traversal']) {
      expect(logs).toContain(id);
    }
    for (const secret of [SECRET, jwt, jwt.split('.')[2] ?? jwt, badToken, proxyAuth]) {
      expect(logs.includes(secret), `a secret appears in the logs: ${secret.slice(0, 12)}…`).toBe(false);
      expect(metrics.includes(secret), `a secret appears in /metrics: ${secret.slice(0, 12)}…`).toBe(false);
    }
    expect(logs).not.toMatch(/Bearer\s+\S/);
  });
});

describe('admin listener', () => {
  it('serves no data-plane paths on the admin port, and no admin paths on the data port', async () => {
    const before = upstream.stats.singleCalls + upstream.stats.batchCalls;
    const onAdmin = await fetch(`${proxy.adminUrl}/v1/app1/users/sec-user`, {
      headers: { authorization: AUTH },
    });
    expect(onAdmin.status).toBe(404);
    expect(await onAdmin.text()).not.toContain('from-upstream');
    expect(upstream.stats.singleCalls + upstream.stats.batchCalls).toBe(before);

    const onData = await fetch(`${proxy.url}/metrics`);
    expect(await onData.text()).not.toContain('batch_proxy_');
  });
});
