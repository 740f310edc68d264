// Scenario 3 — limit efficiency: a fake upstream that enforces both budgets exactly (batch calls and
// single calls, GCRA to the millisecond), overloaded by closed-loop callers. How many ops per second
// reach it, against the most its limits allow, through:
//  - the proxy with both budgets configured (batch lane + single lane),
//  - the proxy with the batch budget only,
//  - no proxy: each service calls the upstream directly, paced by `bottleneck` sharing its limiter
//    state through Redis, configured to the single-call limit,
// each with one replica/service and with three (Redis-shared).

import { createRequire } from 'node:module';
import type BottleneckType from 'bottleneck';
import { Redis } from 'ioredis';
import type { ProxyProcess } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';
import { APP_ID, APPS, SECRET, startProxy } from './context.js';
import { closedLoop, httpSend, percentile, pool, putUser, type Send, sleep } from './load.js';
import { ms, num, pct, type Report } from './report.js';
import { startUpstream, type UpstreamDetail } from './upstream.js';

// bottleneck is CommonJS; its typings declare an ES default export that Node does not provide.
const Bottleneck = createRequire(import.meta.url)('bottleneck') as typeof BottleneckType;

export interface LimitsOptions {
  batch: { ratePerSec: number; burst: number };
  rest: { ratePerSec: number; burst: number };
  maxOps: number;
  callers: number;
  warmMs: number;
  durationMs: number;
  upstreamLatencyMs: number;
}

type Kind = 'proxy: batch + single lanes' | 'proxy: batch lane only' | 'direct + bottleneck (Redis)';

interface Row {
  kind: Kind;
  replicas: number;
  opsPerSec: number;
  /** The most this path can use: both budgets, or one of them. */
  pathMax: number;
  batchPerSec: number;
  singlePerSec: number;
  opsPerBatch: number;
  upstream429: number;
  callerErrors: number;
  p50: number;
}

/** Ops per second that reached the upstream in [t0, t1], measured between batch arrivals when there are any. */
function deliveredRate(d: UpstreamDetail, t0: number, t1: number) {
  const inWindow: number[] = [];
  d.batchArrivals.forEach((t, i) => {
    if (t >= t0 && t <= t1) inWindow.push(i);
  });
  let a = t0;
  let b = t1;
  let batchOps = 0;
  let batches = 0;
  const first = inWindow[0];
  const last = inWindow[inWindow.length - 1];
  if (first !== undefined && last !== undefined && last > first) {
    // From one batch arrival to another: no partial batch at either edge.
    a = d.batchArrivals[first] ?? t0;
    b = d.batchArrivals[last] ?? t1;
    for (let i = first; i < last; i++) batchOps += d.batchSizes[i] ?? 0;
    batches = last - first;
  }
  const singles = d.restArrivals.filter((t) => t >= a && t < b).length;
  const secs = (b - a) / 1000;
  return {
    opsPerSec: (batchOps + singles) / secs,
    batchPerSec: batches / secs,
    singlePerSec: singles / secs,
    opsPerBatch: batches > 0 ? batchOps / batches : Number.NaN,
  };
}

export async function limits(report: Report, opts: LimitsOptions): Promise<Row[]> {
  const theoretical = opts.batch.ratePerSec * opts.maxOps + opts.rest.ratePerSec;
  const upstream = await startUpstream({
    apps: APPS,
    limits: { batch: opts.batch, rest: opts.rest },
    latencyMs: opts.upstreamLatencyMs,
  });
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  const rows: Row[] = [];

  /** Runs the load through `sends` and reads what reached the upstream. */
  const measure = async (
    kind: Kind,
    replicas: number,
    pathMax: number,
    send: Send,
    cleanup: () => Promise<void>,
  ) => {
    await upstream.reset();
    const run = closedLoop({ send, callers: opts.callers });
    await sleep(opts.warmMs);
    const s0 = await upstream.snapshot();
    run.resetLatencies();
    const c0 = run.counts();
    await sleep(opts.durationMs);
    const s1 = await upstream.snapshot();
    const c1 = run.counts();
    const lat = run.latencies();
    const detail = await upstream.detail();
    const stopped = run.stop(5_000);
    await cleanup();
    await stopped;
    const r = deliveredRate(detail, s0.now, s1.now);
    rows.push({
      kind,
      replicas,
      ...r,
      pathMax,
      upstream429: s1.rejected429 - s0.rejected429,
      callerErrors: c1.completed - c0.completed - (c1.ok - c0.ok),
      p50: percentile(lat, 50),
    });
  };

  try {
    const proxyKinds: Array<{ kind: Kind; rest: boolean }> = [
      { kind: 'proxy: batch + single lanes', rest: true },
      { kind: 'proxy: batch lane only', rest: false },
    ];
    for (const { kind, rest } of proxyKinds) {
      for (const replicas of [1, 3]) {
        await admin.flushall();
        const env: Record<string, string> = {
          UPSTREAM_URL: upstream.url,
          BATCH_WINDOW_MS: '10',
          BATCH_MAX_OPS: String(opts.maxOps),
          BATCH_RATE_PER_SEC: String(opts.batch.ratePerSec),
          BATCH_BURST: String(opts.batch.burst),
          MAX_WAIT_MS: '30000',
          SHUTDOWN_GRACE_MS: '300',
          ...(rest
            ? { REST_RATE_PER_SEC: String(opts.rest.ratePerSec), REST_BURST: String(opts.rest.burst) }
            : {}),
          ...(replicas > 1 ? { REDIS_URL: redis.url } : {}),
        };
        const proxies: ProxyProcess[] = await Promise.all(
          Array.from({ length: replicas }, () => startProxy(env)),
        );
        const pools = proxies.map((p) => pool(p.url, opts.callers));
        const pathMax = rest ? theoretical : opts.batch.ratePerSec * opts.maxOps;
        await measure(kind, replicas, pathMax, httpSend(pools, putUser(APP_ID, SECRET)), async () => {
          // Stopping a proxy answers what it holds (drain), so the callers' last calls end.
          await Promise.all(proxies.map((p) => p.stop()));
          await Promise.all(pools.map((p) => p.close()));
        });
      }
    }

    for (const services of [1, 3]) {
      await admin.flushall();
      const limiters = Array.from(
        { length: services },
        (_, k) =>
          new Bottleneck({
            id: 'bench-direct',
            minTime: 1000 / opts.rest.ratePerSec,
            maxConcurrent: null,
            datastore: 'ioredis',
            clearDatastore: k === 0,
            clientOptions: { host: '127.0.0.1', port: redis.port },
            Redis,
          }),
      );
      for (const limiter of limiters) await limiter.ready();
      const pools = limiters.map(() => pool(upstream.url, opts.callers));
      const direct = httpSend(pools, putUser(APP_ID, SECRET));
      // Call number i belongs to service i % services, with that service's limiter and connections.
      const send: Send = (i) => {
        const limiter = limiters[i % services];
        if (!limiter) throw new Error('no limiter');
        return limiter.schedule(() => direct(i));
      };
      await measure('direct + bottleneck (Redis)', services, opts.rest.ratePerSec, send, async () => {
        await Promise.all(limiters.map((l) => l.stop({ dropWaitingJobs: true })));
        await Promise.all(limiters.map((l) => l.disconnect()));
        await Promise.all(pools.map((p) => p.close()));
      });
    }
  } finally {
    admin.disconnect();
    await redis.stop();
    await upstream.close();
  }

  report.table(
    [
      'path',
      'replicas / services',
      'delivered ops/s',
      'fill (of the upstream maximum)',
      'fill (of what this path can use)',
      'batch calls/s',
      'single calls/s',
      'ops per batch',
      'upstream 429s',
      'caller p50',
    ],
    rows.map((r) => [
      r.kind,
      r.replicas,
      num(r.opsPerSec, 1),
      pct(r.opsPerSec / theoretical),
      `${pct(r.opsPerSec / r.pathMax)} of ${r.pathMax}/s`,
      num(r.batchPerSec, 2),
      num(r.singlePerSec, 1),
      num(r.opsPerBatch, 1),
      r.upstream429,
      ms(r.p50, 0),
    ]),
  );
  return rows;
}
