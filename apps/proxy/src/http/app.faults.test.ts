// A fault while a queued call is being answered (a bug in recording it, not a condition of the
// traffic) must not cost the caller its answer, must not be recorded twice and must not end the
// process (SPEC §8c): the real engine and app in front of a real upstream on loopback.

import { ServerResponse } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type ProxyMetrics, type RequestRecord } from '../admin/metrics/metrics.js';
import { type Listening, listen } from '../process/server.js';
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
const recorded: RequestRecord[] = [];
/** How many of the next batched calls' records throw (a planted recording bug). */
let failRecords = 0;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  upstream = await loopbackUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[[0,200,{"id":"u1"}]]');
    });
  });
  metrics = createMetrics({ queued: () => [], redisFallback: () => false });
  const scheduler = edgeScheduler(upstream.client, { observer: metrics.observer });
  const sink = jsonLines(logLines);
  const app = edgeApp(scheduler, {
    upstream: upstream.client,
    logger: pino({ level: 'info' }, sink),
    metrics: {
      ...metrics,
      request: (r) => {
        if (r.kind === 'batched' && failRecords > 0) {
          failRecords--;
          throw new Error('planted recording bug');
        }
        recorded.push(r);
        metrics.request(r);
      },
    },
    droppableHeaders: new Set(),
  });
  proxy = await listen(app, { port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
  await upstream.close();
  await metrics.shutdown();
});

const get = (path: string) =>
  fetch(`http://127.0.0.1:${proxy.port}${path}`, {
    headers: { authorization: 'Bearer sk_1' },
    // Bounded: a caller left without an answer fails here instead of hanging the suite.
    signal: AbortSignal.timeout(5_000),
  });

describe('a fault while answering a queued call', () => {
  it('a recording bug after the answer: the caller has its answer, the fault is logged, nothing unhandled', async () => {
    failRecords = 1;
    const before = recorded.length;
    const res = await get('/v1/app1/users/u1');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 'u1' });
    // The planted throw was the only record attempt: never a second record of the same call.
    expect(recorded.length).toBe(before);
    // The rejection (if any) surfaces on the next turns.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    expect(logLines.some((l) => l.msg === 'request failed' && l.level === 50)).toBe(true);
  });

  it('the next calls are answered and recorded once each', async () => {
    const before = recorded.length;
    for (const _ of [1, 2, 3]) {
      const res = await get('/v1/app1/users/u1');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ id: 'u1' });
    }
    expect(recorded.slice(before).map((r) => [r.kind, r.status, r.source])).toEqual([
      ['batched', 200, 'upstream'],
      ['batched', 200, 'upstream'],
      ['batched', 200, 'upstream'],
    ]);
  });
});

describe('a fault while a Response is written (a refusal, a pass-through answer)', () => {
  it('answers 500 or cuts the caller, logs it, and leaves nothing unhandled', async () => {
    // A planted fault in the write itself: the first writeHead after this throws.
    const writeHead = ServerResponse.prototype.writeHead;
    let armed = true;
    ServerResponse.prototype.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      if (armed) {
        armed = false;
        throw new Error('planted write fault');
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof writeHead;
    try {
      const logged = logLines.length;
      // A bad percent-encoding: refused by the proxy with a Response of its own.
      const res = await get('/v1/app1/users/%zz');
      expect(res.status).toBe(500);
      expect(armed).toBe(false);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      expect(logLines.slice(logged).some((l) => l.msg === 'request failed' && l.level === 50)).toBe(true);
    } finally {
      ServerResponse.prototype.writeHead = writeHead;
    }
    // The listener still answers.
    expect((await get('/v1/app1/users/u1')).status).toBe(200);
  });
});
