// SPEC §7b: one scheduler spends both upstream budgets. Offered more than both allow, the proxy
// delivers close to BATCH_RATE × BATCH_MAX_OPS + REST_RATE ops/s with zero upstream 429s, on one
// replica and on a fleet sharing Redis.
//
// With burst 1 every grant waits for the previous call's answer (SPEC §7: spacing from the answer is
// what keeps an exact upstream limiter from answering 429), so each call's latency is lost capacity:
// measured in the steady state, 96-97% on one replica and ~90% on three (five processes on two
// cores; each grant adds a Redis round trip and a timer). With burst 2 one token of slack absorbs
// the answer's latency: 96-100% on three replicas.

import { describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';
import { useCleanup } from '../harness/use.js';

const SECRET = 'sk_budgets';
const BATCH_RATE = 2;
const REST_RATE = 20;
const MAX_OPS_PER_SEC = BATCH_RATE * 10 + REST_RATE; // 40

const cleanup = useCleanup();

async function setup(
  replicas: number,
  burst: number,
): Promise<{ upstream: FakeUpstream; proxies: ProxyProcess[] }> {
  const BATCH = { ratePerSec: BATCH_RATE, burst };
  const REST = { ratePerSec: REST_RATE, burst };
  const upstream = await startFakeUpstream({ apps: { app1: SECRET }, limits: { batch: BATCH, rest: REST } });
  cleanup.push(() => upstream.close());
  let redis: RedisProcess | undefined;
  if (replicas > 1) {
    redis = await startRedis();
    const r = redis;
    cleanup.push(() => r.stop());
  }
  const proxies = await Promise.all(
    Array.from({ length: replicas }, () =>
      startProxyProcess({
        UPSTREAM_URL: upstream.url,
        LOG_LEVEL: 'warn',
        BATCH_RATE_PER_SEC: String(BATCH.ratePerSec),
        BATCH_BURST: String(BATCH.burst),
        REST_RATE_PER_SEC: String(REST.ratePerSec),
        REST_BURST: String(REST.burst),
        ...(redis ? { REDIS_URL: redis.url } : {}),
      }),
    ),
  );
  for (const p of proxies) cleanup.push(() => p.stop());
  return { upstream, proxies };
}

async function overload(replicas: number, burst: number) {
  const { upstream, proxies } = await setup(replicas, burst);
  const calls = 240; // ~6 s of capacity, all offered at once
  const lanes = new Map<string, number>();
  const results = await Promise.all(
    Array.from({ length: calls }, async (_, i) => {
      const res = await fetch(`${proxies[i % proxies.length]?.url}/v1/app1/users/u${i}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `u${i}`, custom: { n: String(i) } }),
      });
      const lane = /lane;desc="(\w+)"/.exec(res.headers.get('server-timing') ?? '')?.[1] ?? 'none';
      lanes.set(lane, (lanes.get(lane) ?? 0) + 1);
      return { ok: res.status === 200 && (await res.text()) === '{}' };
    }),
  );
  // Delivered rate as the upstream saw it, in the steady state: ops that arrived between 1 s after
  // the first call (start-up: the proxies are still parsing the burst of requests) and the last full
  // batch (after it the queues run dry: no longer overload).
  const events = [
    ...upstream.stats.arrivals.batch.map((at, i) => ({ at, ops: upstream.stats.batchSizes[i] ?? 0 })),
    ...upstream.stats.arrivals.rest.map((at) => ({ at, ops: 1 })),
  ].sort((a, b) => a.at - b.at);
  // The window runs from one batch arrival to another, so it holds whole batch periods (a batch of
  // 10 cut in half would swing the rate by several percent).
  const batchArrivals = upstream.stats.arrivals.batch;
  const first = events[0]?.at ?? 0;
  const from = batchArrivals.find((at) => at >= first + 1000) ?? first;
  const lastFull = upstream.stats.batchSizes.lastIndexOf(10);
  const to = batchArrivals[lastFull] ?? batchArrivals.at(-1) ?? 0;
  const steadyOps = events.filter((e) => e.at >= from && e.at < to).reduce((n, e) => n + e.ops, 0);
  const spanSec = (to - from) / 1000;
  const delivered = upstream.executed.length;
  const rate = steadyOps / spanSec;
  const r429 = upstream.stats.rejected429.batch + upstream.stats.rejected429.rest;
  console.log(
    `${replicas} replica(s), burst ${burst}: ${delivered} ops; steady state ${steadyOps} ops in ${spanSec.toFixed(2)} s = ` +
      `${rate.toFixed(1)} ops/s of ${MAX_OPS_PER_SEC} ` +
      `(${((rate / MAX_OPS_PER_SEC) * 100).toFixed(1)}%), lanes ${JSON.stringify(Object.fromEntries(lanes))}, ` +
      `${upstream.stats.arrivals.batch.length} batch + ${upstream.stats.arrivals.rest.length} single calls, 429s ${r429}`,
  );
  if (process.env.DEBUG_BUDGETS || r429 > 0) {
    for (const r of upstream.stats.rejections) {
      const near = upstream.stats.arrivals[r.bucket].filter((at) => Math.abs(at - r.at) < 1500);
      console.log(
        `429 on ${r.bucket} at ${r.at.toFixed(1)}, ${r.earlyMs.toFixed(2)} ms early; admitted arrivals nearby:`,
        near.map((at) => (at - r.at).toFixed(1)).join(','),
      );
    }
    const gaps = (xs: number[]) => xs.slice(1).map((x, i) => Math.round(x - (xs[i] ?? 0)));
    console.log('rest gaps', gaps(upstream.stats.arrivals.rest).join(','));
    console.log(
      'batch gaps',
      gaps(upstream.stats.arrivals.batch).join(','),
      'sizes',
      upstream.stats.batchSizes.join(','),
    );
  }
  return { results, rate, r429, lanes };
}

describe('two budgets, one scheduler', () => {
  // Burst 1 is the worst case: every call waits for the previous one's answer, so the latency of each
  // answer is lost (on a fleet, plus a Redis round trip and a timer): at 20 single calls/s every
  // millisecond of answer latency costs 2% of the single lane. That latency is the machine's, not the
  // scheduler's: 96-97% on a quiet 2-core machine, 94% (one replica) and 81% (three) with a load
  // average of 4, which failed CI. The floors sit below what the machine costs and far above what a
  // scheduler bug costs (one lane left unspent: 50%; an extra interval per call: 50%).
  it('one replica at burst 1 delivers within 10% of the combined maximum with zero 429s', async () => {
    const { results, rate, r429, lanes } = await overload(1, 1);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(r429).toBe(0);
    expect(lanes.get('single') ?? 0).toBeGreaterThan(0);
    expect(lanes.get('batch') ?? 0).toBeGreaterThan(0);
    expect(rate).toBeGreaterThanOrEqual(MAX_OPS_PER_SEC * 0.9);
  });

  it('three replicas sharing Redis at burst 1 deliver most of the combined maximum with zero 429s', async () => {
    const { results, rate, r429 } = await overload(3, 1);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(r429).toBe(0);
    expect(rate).toBeGreaterThanOrEqual(MAX_OPS_PER_SEC * 0.75);
  });

  // With a burst of 2 (the real upstream's are hundreds) one token of slack absorbs an answer's
  // latency: the next grant no longer waits for it. Two calls granted from a full bucket may arrive
  // in either order: the bucket stays held until both have landed.
  // 96-100% on a quiet machine; 94.6% at a load average of 5 (five processes on two cores).
  it('three replicas sharing Redis at burst 2 deliver within 10% of the combined maximum with zero 429s', async () => {
    const { results, rate, r429, lanes } = await overload(3, 2);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(r429).toBe(0);
    expect(lanes.get('single') ?? 0).toBeGreaterThan(0);
    expect(rate).toBeGreaterThanOrEqual(MAX_OPS_PER_SEC * 0.9);
  });
});
