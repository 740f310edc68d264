// `x-batch-max-wait-ms` at the edge (issue #31): the real engine with an in-process limiter in front
// of a real upstream on loopback. The hint bounds a call's wait on every route that waits (a queued
// call, a pass-through, the client's own batch call), never reaches the upstream, never stops a
// call from batching, and a value the proxy cannot use is named in Server-Timing, never refused.

import type { IncomingHttpHeaders } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Listening, listen } from '../process/server.js';
import { MAX_WAIT_HEADER, PRIORITY_HEADER } from './caller-hints.js';
import { edgeApp, edgeScheduler, type LoopbackUpstream, loopbackUpstream } from './edge.fixture.js';
import { parsePriorityRules } from './priority-rules.js';

interface Received {
  readonly line: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

let upstream: LoopbackUpstream;
let proxy: Listening;
const received: Received[] = [];

beforeAll(async () => {
  upstream = await loopbackUpstream((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      received.push({ line: `${req.method} ${req.url}`, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url?.endsWith('/batch') ? '[[0,200,{"batched":true}]]' : '{"ok":true}');
    });
  });
  // App `slow` may make one batch call a minute, app `roomy` a hundred a second; the single-call
  // budget, one a minute: the second call of a kind waits far past any hint here.
  const scheduler = edgeScheduler(upstream.client, {
    maxWaitMs: 120_000,
    batchLimit: { ratePerSec: 1 / 60, burst: 1 },
    restLimit: { ratePerSec: 1 / 60, burst: 1 },
  });
  const app = edgeApp(scheduler, {
    upstream: upstream.client,
    logger: pino({ level: 'silent' }),
    metrics: undefined,
  });
  proxy = await listen(app, { port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
  await upstream.close();
});

beforeEach(() => {
  received.length = 0;
});

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await fetch(`http://127.0.0.1:${proxy.port}${path}`, {
    method,
    headers: { authorization: 'Bearer sk_1', ...headers },
    ...(body === undefined ? {} : { body }),
  });
  return { res, text: await res.text() };
}

const JSON_TYPE = { 'content-type': 'application/json' };

describe('x-batch-max-wait-ms', () => {
  it.each([
    // A queued call may leave by either budget (SPEC §7b): two calls spend both.
    ['a queued call', 2, 'GET', '/v1/q/users/u1', {}, undefined],
    ['a pass-through', 1, 'GET', '/v1/p/users/u1', { 'x-batch-bypass': '1' }, undefined],
    ['a client batch call', 1, 'POST', '/v1/c/batch', JSON_TYPE, '[[0,"GET","/users/u1",{}]]'],
  ])('answers %s 503 + Retry-After within its own bound, and the hint never reaches the upstream', async (_kind, spend, method, path, headers, body) => {
    for (let i = 0; i < spend; i += 1) {
      const first = await call(method, path, { ...headers, [MAX_WAIT_HEADER]: '100' }, body);
      expect(first.res.status).toBe(200);
    }
    // The budgets are spent for a minute: without the hint this call would wait up to MAX_WAIT_MS.
    const last = await call(method, path, { ...headers, [MAX_WAIT_HEADER]: '100' }, body);
    expect(last.res.status).toBe(503);
    expect(JSON.parse(last.text)).toMatchObject({ error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
    expect(Number(last.res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(received).toHaveLength(spend);
    for (const r of received) {
      expect(r.headers).not.toHaveProperty(MAX_WAIT_HEADER);
      expect(r.body).not.toContain(MAX_WAIT_HEADER);
    }
  });

  it('does not make a batchable call pass through', async () => {
    const { res } = await call('GET', '/v1/b/users/u1', { [MAX_WAIT_HEADER]: '5000' });
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).not.toContain('passthrough');
    expect(received.map((r) => r.line)).toEqual(['POST /v1/b/batch']);
  });

  it.each([
    ['a queued call', 'GET', '/v1/i/users/u1', {}],
    ['a pass-through', 'GET', '/v1/j/users/u1', { 'x-batch-bypass': '1' }],
  ])('ignores a value it cannot use on %s, names it in Server-Timing, and answers the call', async (_kind, method, path, headers) => {
    const { res } = await call(method, path, { ...headers, [MAX_WAIT_HEADER]: 'soon' });
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toContain('ignored;desc="x-batch-max-wait-ms"');
    expect(received).toHaveLength(1);
    expect(received[0]?.headers).not.toHaveProperty(MAX_WAIT_HEADER);
  });

  it("names an ignored value on the proxy's own refusal too", async () => {
    const { res } = await call('PUT', '/v1/r/users/u1', { ...JSON_TYPE, [MAX_WAIT_HEADER]: '-5' }, '{');
    expect(res.status).toBe(400);
    expect(res.headers.get('server-timing')).toBe('ignored;desc="x-batch-max-wait-ms"');
    expect(received).toHaveLength(0);
  });

  it('names it beside the pass-through reason', async () => {
    const { res } = await call('GET', '/v1/s/users/u1', { 'x-batch-bypass': '1', [MAX_WAIT_HEADER]: '1.5' });
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toBe(
      'passthrough;desc="bypass", ignored;desc="x-batch-max-wait-ms"',
    );
  });
});

describe('x-batch-priority', () => {
  it('sends the high call first when both wait for the same token, and never the header upstream', async () => {
    const order: string[] = [];
    const seen: IncomingHttpHeaders[] = [];
    const slow = await loopbackUpstream((req, res) => {
      seen.push(req.headers);
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', () => {
        const [[, , path]] = JSON.parse(body) as [[number, string, string]];
        order.push(path);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('[[0,200,{}]]');
      });
    });
    // Two batch calls a second, one op each; PRIORITY_RULES makes /sync calls low.
    const scheduler = edgeScheduler(slow.client, { maxOps: 1, batchLimit: { ratePerSec: 2, burst: 1 } });
    const rules = parsePriorityRules('low GET /v1/*/sync/**');
    if ('invalid' in rules) throw new Error(rules.why);
    const app = edgeApp(scheduler, {
      upstream: slow.client,
      logger: pino({ level: 'silent' }),
      metrics: undefined,
      priorityRules: rules,
    });
    const edge = await listen(app, { port: 0, host: '127.0.0.1' });
    try {
      const get = (path: string, headers: Record<string, string> = {}) =>
        fetch(`http://127.0.0.1:${edge.port}${path}`, {
          headers: { authorization: 'Bearer sk_1', ...headers },
        });
      // The first call spends the token; the next three wait for the next ones, the low ones sent first.
      const first = get('/v1/a/users/u0');
      await first;
      const low = get('/v1/a/sync/1');
      const lowToo = get('/v1/a/users/u1', { [PRIORITY_HEADER]: 'low' });
      const high = get('/v1/a/users/u2', { [PRIORITY_HEADER]: 'high' });
      const answers = await Promise.all([low, lowToo, high]);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(order).toEqual(['/users/u0', '/users/u2', '/sync/1', '/users/u1']);
      for (const headers of seen) expect(headers).not.toHaveProperty(PRIORITY_HEADER);
    } finally {
      await new Promise<void>((resolve) => edge.server.close(() => resolve()));
      await slow.close();
    }
  });
});
