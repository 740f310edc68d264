// Fleet mode (SPEC §7): several proxy processes sharing one Redis behave, toward the upstream, like one
// well-behaved client — even when Redis goes away and comes back, or the upstream is stricter than
// the proxies were told.

import { describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';
import { useCleanup } from '../harness/use.js';

const SECRET = 'sk_fleet';
const AUTH = `Bearer ${SECRET}`;

const cleanup = useCleanup();

async function fleet(
  size: number,
  upstreamLimit: { ratePerSec: number; burst: number },
  env: Record<string, string>,
): Promise<{ upstream: FakeUpstream; redis: RedisProcess; proxies: ProxyProcess[] }> {
  const upstream = await startFakeUpstream({ apps: { app1: SECRET }, limits: { batch: upstreamLimit } });
  cleanup.push(() => upstream.close());
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const proxies = await Promise.all(
    Array.from({ length: size }, () =>
      startProxyProcess({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, LOG_LEVEL: 'warn', ...env }),
    ),
  );
  for (const p of proxies) cleanup.push(() => p.stop());
  return { upstream, redis, proxies };
}

interface Result {
  readonly replica: number;
  readonly status: number;
  readonly ms: number;
  readonly ok: boolean;
}

/** PUTs a unique user through replica i % n, then checks the answer is its own. */
async function putUser(proxies: ProxyProcess[], i: number): Promise<Result> {
  const replica = i % proxies.length;
  const started = performance.now();
  const res = await fetch(`${proxies[replica]?.url}/v1/app1/users/u${i}`, {
    method: 'PUT',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `user ${i}`, custom: { n: String(i) } }),
  });
  const body = await res.text();
  return {
    replica,
    status: res.status,
    ms: performance.now() - started,
    ok: res.status === 200 && body === '{}',
  };
}

function sleepUntil(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

describe('a fleet sharing Redis', () => {
  it('three replicas pace one exact upstream limit with zero 429s and lose no time', async () => {
    // Each batch waits for the previous one's answer (SPEC §7), plus a Redis round trip and a timer:
    // ~5-10 ms per call on a quiet 2-core machine, ~20 ms with a load average of 4 (then 10-12% at
    // 5 batches/s, which failed CI against a 10% bound; at the upstream's real 1/s it is 2%). 15%
    // leaves that to the machine and still fails a pacer that waits one interval too many (+100%).
    const rate = 5;
    const { upstream, proxies } = await fleet(
      3,
      { ratePerSec: rate, burst: 1 },
      {
        BATCH_RATE_PER_SEC: String(rate),
        BATCH_BURST: '1',
      },
    );
    const calls = 200;
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: calls }, (_, i) => putUser(proxies, i)));
    const elapsed = performance.now() - started;

    expect(results.filter((r) => !r.ok)).toEqual([]);
    if (upstream.stats.rejected429.batch > 0) console.log(proxies.map((p) => p.logs()).join('\n'));
    expect(upstream.stats.rejected429.batch).toBe(0);
    const batches = upstream.stats.batchSizes.length;
    // The limit allows one batch per 200 ms after the first: the upstream must see the batches arrive
    // within 15% of that (spacing from each answer costs the answer's latency, SPEC §7).
    const allowedMs = ((batches - 1) / rate) * 1000;
    const arrivals = upstream.stats.arrivals.batch;
    const pacedMs = (arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0);
    const perReplica = [0, 1, 2].map((r) => {
      const mine = results.filter((x) => x.replica === r).map((x) => x.ms);
      return `replica ${r}: p50 ${percentile(mine, 50).toFixed(0)} ms, p99 ${percentile(mine, 99).toFixed(0)} ms`;
    });
    console.log(
      `fleet: ${calls} calls, ${batches} batches (fill ${((calls / batches / 10) * 100).toFixed(0)}%), ` +
        `first to last batch ${pacedMs.toFixed(0)} ms vs ${allowedMs.toFixed(0)} ms allowed ` +
        `(whole run ${elapsed.toFixed(0)} ms); ${perReplica.join('; ')}`,
    );
    expect(batches).toBeLessThanOrEqual(Math.ceil(calls / 10) + 3);
    expect(pacedMs).toBeLessThanOrEqual(allowedMs * 1.15);
  });

  it("serves waiting replicas in their calls' arrival order", async () => {
    // One grant per 200 ms (50 ops/s) offered 75 calls/s, spread evenly over three replicas: the
    // backlog grows, and every call waits for the calls that arrived before it, whichever replica
    // holds them. A replica that won every reopening would serve its own calls first.
    const rate = 5;
    const { upstream, proxies } = await fleet(
      3,
      { ratePerSec: rate, burst: 1 },
      { BATCH_RATE_PER_SEC: String(rate), BATCH_BURST: '1' },
    );
    const calls = 240;
    const spacingMs = 1000 / 75;
    const t0 = performance.now();
    const timed = await Promise.all(
      Array.from({ length: calls }, async (_, i) => {
        await sleepUntil(t0 + i * spacingMs);
        const sent = performance.now();
        const r = await putUser(proxies, i);
        return { ...r, i, sent, done: sent + r.ms };
      }),
    );
    expect(timed.filter((r) => !r.ok)).toEqual([]);
    expect(upstream.stats.rejected429.batch).toBe(0);

    const waits = [0, 1, 2].map((r) => timed.filter((x) => x.replica === r).map((x) => x.ms));
    const p50s = waits.map((w) => percentile(w, 50));
    const overall = percentile(
      timed.map((x) => x.ms),
      50,
    );
    // How far each call's answer is from its place in arrival order, in calls.
    const byDone = [...timed].sort((a, b) => a.done - b.done);
    const displacement = byDone.map((x, rank) => Math.abs(rank - x.i));
    const maxDisplacement = Math.max(...displacement);
    const spread = Math.max(...p50s) - Math.min(...p50s);
    console.log(
      `arrival order: ${calls} calls at 75/s over 3 replicas, limit 50 ops/s; per-replica p50 wait ` +
        `${p50s.map((p) => p.toFixed(0)).join(' / ')} ms (spread ${spread.toFixed(0)} ms, overall p50 ` +
        `${overall.toFixed(0)} ms); answers at most ${maxDisplacement} calls from arrival order ` +
        `(mean ${(displacement.reduce((a, b) => a + b, 0) / calls).toFixed(1)})`,
    );
    // Batches of 10 from one replica at a time: a call can be answered up to a round of batches
    // (3 replicas × 10) away from its place; twice that leaves room for timers on a busy machine.
    expect(maxDisplacement).toBeLessThanOrEqual(60);
    // Each replica's median wait within three grant intervals of the others'. Batches of 10 go to one
    // replica at a time, so one replica's calls run a grant behind the others' (alone, on this build
    // and the one before: 185-199 ms spreads, one of 393 ms); with the other e2e files beside it a
    // CI run read 495 ms. A replica winning every reopening (no turns) read 2.3 s.
    expect(spread).toBeLessThanOrEqual(3 * (1000 / rate));
  });

  it('keeps answering every call while Redis is killed and restarted, then shares state again', async () => {
    const { upstream, redis, proxies } = await fleet(
      2,
      { ratePerSec: 20, burst: 2 },
      {
        BATCH_RATE_PER_SEC: '20',
        BATCH_BURST: '2',
        REDIS_FALLBACK_SHARE: '0.5',
      },
    );
    const first = await Promise.all(Array.from({ length: 60 }, (_, i) => putUser(proxies, i)));
    await redis.kill();
    const during = await Promise.all(Array.from({ length: 60 }, (_, i) => putUser(proxies, 100 + i)));
    for (const p of proxies) expect(await fallbackGauge(p)).toBe(1);
    await redis.restart();
    // Back to shared state by itself: wait until each replica's gauge says so.
    for (const p of proxies) await until(async () => (await fallbackGauge(p)) === 0, 10_000);
    const after = await Promise.all(Array.from({ length: 60 }, (_, i) => putUser(proxies, 200 + i)));

    for (const batch of [first, during, after]) expect(batch.filter((r) => !r.ok)).toEqual([]);
    for (const p of proxies) {
      expect(p.child.exitCode).toBeNull();
      expect(p.logs()).toMatch(/redis unreachable/);
      expect(p.logs()).toMatch(/redis reachable again/);
    }
    console.log(
      `redis outage: 180 calls answered, upstream 429s absorbed: ${upstream.stats.rejected429.batch}`,
    );
  });

  it('absorbs 429s from an upstream stricter than configured and answers every call', async () => {
    const { upstream, proxies } = await fleet(
      2,
      { ratePerSec: 4, burst: 1 },
      {
        BATCH_RATE_PER_SEC: '20',
        BATCH_BURST: '5',
      },
    );
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => putUser(proxies, i)));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(upstream.stats.rejected429.batch).toBeGreaterThan(0);
    // Each user was written exactly once: a 429'd batch never ran, and was sent again.
    const written = upstream.executed.filter((op) => op.method === 'PUT').map((op) => op.path);
    expect(new Set(written).size).toBe(60);
    expect(written).toHaveLength(60);
    console.log(
      `stricter upstream: ${upstream.stats.rejected429.batch} upstream 429s absorbed, 60/60 answered`,
    );
  });
});

async function fallbackGauge(p: ProxyProcess): Promise<number> {
  const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
  const match = /^batch_proxy_redis_fallback(?:\{[^}]*\})? (\d+)/m.exec(text);
  return Number(match?.[1] ?? Number.NaN);
}

/** Polls `check` (the proxy exposes no push event for this) until true, bounded by `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
