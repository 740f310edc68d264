// "Why wasn't this batched?" (SPEC §3): the edge app, with the real engine and an in-process limiter,
// in front of a real upstream server on loopback. Every pass-through names its reason to the caller
// (Server-Timing), in the access log (a header's name, never its value) and in the metrics.

import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type ProxyMetrics } from '../admin/metrics/metrics.js';
import { type Listening, listen } from '../process/server.js';
import { createAccessLog } from './access-log.js';
import {
  edgeApp,
  edgeScheduler,
  jsonLines,
  type LoopbackUpstream,
  loopbackUpstream,
} from './edge.fixture.js';

let upstream: LoopbackUpstream;
let proxy: Listening;
let metrics: ProxyMetrics;
const logLines: Array<Record<string, unknown>> = [];
const received: string[] = [];

beforeAll(async () => {
  upstream = await loopbackUpstream((req, res) => {
    received.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // One op per batch call here (callers go one at a time): its result, else a plain answer.
      res.end(req.url?.endsWith('/batch') ? '[[0,200,{"batched":true}]]' : '{"ok":true}');
    });
  });
  metrics = createMetrics({ queued: () => [], redisFallback: () => false });
  const scheduler = edgeScheduler(upstream.client, { observer: metrics.observer });
  const sink = jsonLines(logLines);
  const app = edgeApp(scheduler, {
    upstream: upstream.client,
    logger: pino({ level: 'info' }, sink),
    access: createAccessLog({
      policy: 'all',
      sampleEvery: 1,
      enabled: true,
      write: (line) => sink.write(line),
    }),
    metrics,
    droppableHeaders: new Set(['x-droppable']),
  });
  proxy = await listen(app, { port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
  await upstream.close();
  await metrics.shutdown();
});

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const requestId = `req-${Math.random()}`;
  const res = await fetch(`http://127.0.0.1:${proxy.port}${path}`, {
    method,
    headers: { authorization: 'Bearer sk_1', 'x-request-id': requestId, ...headers },
    ...(body === undefined ? {} : { body }),
  });
  await res.arrayBuffer();
  // The access-log line is written when the answer is; fetch resolves after it.
  const line = logLines.find((l) => l.requestId === requestId);
  return { res, line };
}

describe('pass-through reasons', () => {
  it.each([
    ['header', 'GET', '/v1/a/users/u1', { 'x-tenant': 't1' }, undefined],
    ['query', 'GET', '/v1/a/users?id=1&id=2', {}, undefined],
    ['body', 'POST', '/v1/a/users', {}, undefined],
    ['content-type', 'PUT', '/v1/a/users/u1', { 'content-type': 'text/plain' }, 'x'],
    ['bypass', 'GET', '/v1/a/users/u1', { 'x-batch-bypass': '1' }, undefined],
    ['method', 'OPTIONS', '/v1/a/users/u1', {}, undefined],
    ['route', 'GET', '/v2/health', {}, undefined],
    ['batch-endpoint', 'POST', '/v1/a/batch', { 'content-type': 'application/json' }, '[]'],
  ])('%s: in Server-Timing, the access log and the metrics', async (reason, method, path, headers, body) => {
    const { res, line } = await call(method, path, headers, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toContain(`passthrough;desc="${reason}"`);
    expect(line).toMatchObject({ passReason: reason, source: 'upstream' });
    const text = await metrics.text();
    expect(text).toMatch(
      new RegExp(`^batch_proxy_requests_total\\{[^}]*reason="${reason}"[^}]*\\} [1-9]`, 'm'),
    );
  });

  it('logs the offending header by name, never its value', async () => {
    const { line } = await call('GET', '/v1/a/users/u1', { cookie: 'session=secret-value' });
    expect(line).toMatchObject({ passReason: 'header', passHeader: 'cookie', appId: 'a' });
    expect(JSON.stringify(line)).not.toContain('secret-value');
  });

  it('batches despite a header made droppable (BATCH_DROPPABLE_HEADERS), with no pass-through reason', async () => {
    received.length = 0;
    const { res, line } = await call('GET', '/v1/a/users/u1', { 'x-droppable': '1' });
    expect(res.status).toBe(200);
    expect(received).toEqual(['POST /v1/a/batch']);
    expect(res.headers.get('server-timing')).not.toContain('passthrough');
    expect(line).toMatchObject({ kind: 'batched', appId: 'a', source: 'upstream' });
    expect(line).not.toHaveProperty('passReason');
  });

  it('says why a pass-through was not batched even when the proxy itself refuses it', async () => {
    const { res, line } = await call(
      'PUT',
      '/v1/a/users/u1',
      { 'content-type': 'text/plain' },
      'x'.repeat(20_000),
    );
    expect(res.status).toBe(413);
    expect(res.headers.get('server-timing')).toContain('passthrough;desc="content-type"');
    expect(line).toMatchObject({ passReason: 'content-type', code: 'PROXY_BODY_TOO_LARGE', source: 'proxy' });
  });

  it("logs the proxy's own error code and counts the answer as the proxy's", async () => {
    const { res, line } = await call('PUT', '/v1/a/users/u1', { 'content-type': 'application/json' }, '{');
    expect(res.status).toBe(400);
    expect(line).toMatchObject({
      kind: 'rejected',
      code: 'PROXY_MALFORMED_JSON',
      source: 'proxy',
      appId: 'a',
    });
    expect(await metrics.text()).toMatch(
      /^batch_proxy_requests_total\{kind="rejected",status="400",source="proxy"\} 1$/m,
    );
  });
});

/** One raw HTTP/1.0 exchange (no Host header unless given): the whole answer, which the proxy ends. */
function raw(head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxy.port, '127.0.0.1', () => socket.write(`${head}\r\n\r\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('calls whose Host or target @hono/node-server would not make a Request of', () => {
  // The data listener judges every call itself; node-server only writes the Responses it makes, so a
  // call it cannot make a Request of still gets the proxy's answer — never a second, different one
  // after the call was forwarded.
  it('batches an HTTP/1.0 call without a Host header', async () => {
    received.length = 0;
    const answer = await raw('GET /v1/a/users/u1 HTTP/1.0');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('{"batched":true}');
    expect(received).toEqual(['POST /v1/a/batch']);
  });

  it('passes one through and writes the upstream answer', async () => {
    received.length = 0;
    const answer = await raw('GET /v1/a/users/u1 HTTP/1.0\r\nx-batch-bypass: 1');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('{"ok":true}');
    expect(answer).toContain('passthrough;desc="bypass"');
    expect(received).toEqual(['GET /v1/a/users/u1']);
  });

  it("answers a refusal with the proxy's own error", async () => {
    const answer = await raw('GET /v1/a/users/%zz HTTP/1.0');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"PROXY_BAD_REQUEST"');
  });

  it('answers a HEAD refusal without a body', async () => {
    const answer = await raw('HEAD /v1/a/users/%zz HTTP/1.0');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.endsWith('\r\n\r\n')).toBe(true);
  });
});
