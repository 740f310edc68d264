// `pnpm bench:pacing`, second part (issue #30): pacing from the upstream's own rate-limit headers,
// against adaptive pacing (AIMD, learning from 429s) and a fixed rate, through the built proxy. Each
// row has its own fake TalkJS upstream with a hidden quota of batch calls per 10 s window — 40, then 24
// from one third of the run, then 56 from two thirds (a quota changes from the next window) — that
// every answer reports in IETF `RateLimit` fields; demand stays above every quota (1.5 × the highest).
//
// Rows: headers (RATE_HEADERS=auto, BATCH_RATE_PER_SEC 40 as the ceiling) on one replica and on two
// sharing one redis-server; AIMD (PACING=adaptive, bound 40, RATE_HEADERS=off); fixed 4.8/s (20 %
// over the first quota, RATE_HEADERS=off).
// Columns: batch calls the upstream admitted as a share of what its quota allowed over the whole
// windows of the run, per phase, and the 429s.
//
//   PACING_HEADERS_PHASE_MS=30000 (default) node test/bench/dist/bench/pacing-headers.js

import { performance } from 'node:perf_hooks';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import type { ProxyProcess } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';
import { startProxy } from './context.js';
import { num, pct, table } from './report.js';

const PHASE_MS = Number(process.env.PACING_HEADERS_PHASE_MS ?? 30_000);
const WINDOW_MS = 10_000;
const QUOTAS = [40, 24, 56] as const;
const SECRET = 'sk_bench_headers';
/** Offered calls per second: 1.5 × the highest quota's rate. */
const OFFERED_PER_SEC = (1.5 * Math.max(...QUOTAS) * 1000) / WINDOW_MS;

interface Row {
  readonly name: string;
  readonly replicas: number;
  readonly env: Record<string, string>;
}

const ROWS: readonly Row[] = [
  { name: 'headers (ceiling 40/s), 1 replica', replicas: 1, env: { BATCH_RATE_PER_SEC: '40' } },
  { name: 'headers (ceiling 40/s), 2 replicas', replicas: 2, env: { BATCH_RATE_PER_SEC: '40' } },
  {
    name: 'AIMD (PACING=adaptive, bound 40/s)',
    replicas: 1,
    env: { RATE_HEADERS: 'off', PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '40' },
  },
  {
    name: 'fixed 4.8/s (20 % over Q₀)',
    replicas: 1,
    env: { RATE_HEADERS: 'off', BATCH_RATE_PER_SEC: '4.8' },
  },
];

async function main(): Promise<void> {
  const redis = await startRedis();
  const started: Array<{ upstream: FakeUpstream; proxies: ProxyProcess[] }> = [];
  try {
    for (const row of ROWS) {
      const upstream = await startFakeUpstream({
        apps: { app1: SECRET },
        quota: { style: 'ietf', limit: QUOTAS[0], windowMs: WINDOW_MS },
      });
      const proxies = await Promise.all(
        Array.from({ length: row.replicas }, () =>
          startProxy({
            UPSTREAM_URL: upstream.url,
            LOG_LEVEL: 'error',
            REDIS_URL: redis.url,
            BATCH_BURST: '2',
            BATCH_MAX_OPS: '1',
            BATCH_WINDOW_MS: '1',
            QUEUE_MAX_OPS: '100000',
            MAX_WAIT_MS: '600000',
            ...row.env,
          }),
        ),
      );
      started.push({ upstream, proxies });
    }
    console.log(
      `hidden quota ${QUOTAS.join(' → ')} batch calls per ${WINDOW_MS / 1000} s window, ${PHASE_MS / 1000} s per phase, ${OFFERED_PER_SEC} calls/s offered`,
    );
    const t0 = performance.now();
    const endAt = t0 + 3 * PHASE_MS;
    /** The window from which each quota holds (a change takes effect at the next window). */
    const from = [Number.NEGATIVE_INFINITY];
    const timers = [1, 2].map((i) =>
      setTimeout(() => {
        from[i] = Math.floor(performance.now() / WINDOW_MS) + 1;
        for (const { upstream } of started) upstream.setQuotaLimit(QUOTAS[i] ?? 0);
      }, i * PHASE_MS),
    );
    await Promise.all(started.map(({ proxies }) => offer(proxies, endAt)));
    for (const t of timers) clearTimeout(t);
    const quotaOf = (w: number) => QUOTAS[from.findLastIndex((f) => f <= w)] ?? 0;
    const phaseOf = (w: number) => Math.min(2, Math.floor((w * WINDOW_MS - t0) / PHASE_MS));
    // Whole windows of the run only, the first one left out (the first answer tells the figures).
    const firstWindow = Math.floor(t0 / WINDOW_MS) + 2;
    const lastWindow = Math.floor(endAt / WINDOW_MS) - 1;
    const rows = ROWS.map((row, r) => {
      const { upstream } = started[r] as { upstream: FakeUpstream };
      const admitted = new Map<number, number>();
      for (const at of upstream.stats.arrivals.batch) {
        const w = Math.floor(at / WINDOW_MS);
        admitted.set(w, (admitted.get(w) ?? 0) + 1);
      }
      const byPhase = [0, 1, 2].map(() => ({ got: 0, allowed: 0 }));
      for (let w = firstWindow; w <= lastWindow; w++) {
        const p = byPhase[phaseOf(w)] as { got: number; allowed: number };
        p.got += admitted.get(w) ?? 0;
        p.allowed += quotaOf(w);
      }
      const got = byPhase.reduce((n, p) => n + p.got, 0);
      const allowed = byPhase.reduce((n, p) => n + p.allowed, 0);
      return [
        row.name,
        pct(got / allowed),
        ...byPhase.map((p) => pct(p.got / p.allowed)),
        upstream.stats.rejected429.batch,
        num(upstream.stats.arrivals.batch.length / ((endAt - t0) / 1000)),
      ];
    });
    const header = [
      'row',
      'delivered / quota',
      ...QUOTAS.map((q, i) => `P${i + 1} (Q=${q})`),
      '429s',
      'admitted calls/s',
    ];
    console.log(table(header, rows));
  } finally {
    for (const { upstream, proxies } of started) {
      await Promise.all(proxies.map((p) => p.stop()));
      await upstream.close();
    }
    await redis.stop();
  }
}

/** Saturated demand until `endAt`: OFFERED_PER_SEC distinct reads a second, spread over the replicas. */
async function offer(proxies: readonly ProxyProcess[], endAt: number): Promise<void> {
  const calls: Promise<unknown>[] = [];
  for (let i = 0; performance.now() < endAt; i++) {
    const proxy = proxies[i % proxies.length] as ProxyProcess;
    calls.push(
      fetch(`${proxy.url}/v1/app1/users/u${i}`, {
        headers: { authorization: `Bearer ${SECRET}` },
        signal: AbortSignal.timeout(3 * PHASE_MS + 60_000),
      })
        .then((res) => res.arrayBuffer())
        .catch(() => undefined),
    );
    await new Promise((resolve) => setTimeout(resolve, 1000 / OFFERED_PER_SEC));
  }
  // Stop measuring at endAt; calls still queued are left to the proxies' shutdown.
  void Promise.allSettled(calls);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
