// `pnpm bench:pacing`: adaptive pacing (docs/graph-dialect.md §3) against fixed rates, on the fake
// Microsoft Graph whose hidden request limit L changes mid-run: 100 requests/s, 60 from one third of
// the run, 140 from two thirds. Four tenants run at once, one per row, each with its own hidden
// limit (the fake's limit is per tenant) and its own bucket in one real redis-server:
//   - fixed 120/s (20 % above the first L), fixed 80/s (20 % below it), adaptive (bound 200/s) with
//     the default step (2 % of the bound per probe interval) and with a larger one (5 %).
// Each row keeps more requests waiting than any limit lets through (saturated demand) and paces
// them the way the engine does for a bucket: a $batch call carries the requests granted by the
// RedisLimiter since the last call (one leased token per request, up to 20), each grant settled
// when the call is answered (SPEC §7: spacing from the answer), and a batch with per-request 429s
// pauses the bucket by the longest Retry-After first (the engine's pause, a congestion event for
// the pacer). Requests answered 429 are counted and dropped (demand stays saturated anyway).
//
// Columns: 429s seen, requests delivered per second, and per phase's second half (after the pacer
// had half a phase to settle) the delivered rate and its distance to L; for the adaptive row also
// the mean learned rate and its distance to L.
//
//   pnpm bench:pacing                  the whole run (3 × PACING_PHASE_MS, default 15 s each)
//   PACING_PHASE_MS=5000 pnpm bench:pacing

import { performance } from 'node:perf_hooks';
import { type BucketLimit, bucketKey, type Decision, type PaceParams } from '@batch-proxy/core';
import { RedisLimiter } from '@batch-proxy/core/redis';
import { startRedisServer } from '@batch-proxy/core/testing';
import { type FakeGraph, startFakeGraph } from '../fake-graph/index.js';
import { num, pct, table } from './report.js';

const PHASE_MS = Number(process.env.PACING_PHASE_MS ?? 15_000);
const LIMITS = [100, 60, 140] as const;
/** The fake's and the bucket's burst: one full $batch. */
const BURST = 20;
/** How often a row looks for granted tokens (and at most how long it sleeps on a denial). */
const TICK_MS = 20;
/** A grant's lease (the engine's: the upstream timeout and a second). */
const LEASE_MS = 11_000;

const PACE: PaceParams = {
  maxRatePerSec: 200,
  minRatePerSec: 1,
  initialRatePerSec: 100,
  decreaseFactor: 0.9,
  increaseStep: 4, // the default: 2 % of the bound
  probeIntervalMs: 1000,
};

interface Row {
  readonly name: string;
  readonly tenant: string;
  readonly limit: BucketLimit;
}

const ROWS: readonly Row[] = [
  { name: 'fixed 120/s (20 % over L₀)', tenant: 'high', limit: { ratePerSec: 120, burst: BURST } },
  { name: 'fixed 80/s (20 % under L₀)', tenant: 'low', limit: { ratePerSec: 80, burst: BURST } },
  {
    name: 'adaptive (bound 200/s, step 4/s)',
    tenant: 'adaptive',
    limit: { ratePerSec: 1, burst: BURST, pace: PACE },
  },
  {
    name: 'adaptive (bound 200/s, step 10/s)',
    tenant: 'adaptive10',
    limit: { ratePerSec: 1, burst: BURST, pace: { ...PACE, increaseStep: 10 } },
  },
];

interface Outcome {
  /** Send instants (ms since start) of requests answered 200, and of those answered 429. */
  readonly ok: number[];
  readonly throttled: number[];
  /** [ms since start, learned rate] samples of a paced row. */
  readonly rates: Array<[number, number]>;
  calls: number;
}

interface Answer {
  responses: Array<{ id: string; status: number; headers?: Record<string, string> }>;
}

async function drive(fake: FakeGraph, limiter: RedisLimiter, row: Row, t0: number, endAt: number) {
  const out: Outcome = { ok: [], throttled: [], rates: [], calls: 0 };
  const key = bucketKey(fake.url, row.tenant, 'batch');
  const inflight = new Set<Promise<void>>();
  let seq = 0;
  while (performance.now() < endAt) {
    const grants: Decision[] = [];
    let waitMs = TICK_MS;
    while (grants.length < BURST) {
      const d = await limiter.acquire(key, row.limit, LEASE_MS);
      if (d.ratePerSec !== undefined) out.rates.push([performance.now() - t0, d.ratePerSec]);
      if (!d.granted) {
        waitMs = Math.min(TICK_MS, Math.max(1, d.retryAfterMs));
        break;
      }
      grants.push(d);
    }
    const granted = grants.length;
    const settle = () =>
      Promise.all(grants.map((d) => (d.granted ? limiter.settle(key, row.limit, d.grant) : undefined)));
    if (granted > 0) {
      const sentAt = performance.now() - t0;
      const body = {
        requests: Array.from({ length: granted }, () => ({ id: String(++seq), method: 'GET', url: '/me' })),
      };
      out.calls++;
      const call = fetch(`${fake.url}/v1.0/$batch`, {
        method: 'POST',
        headers: { authorization: `Bearer tok-${row.tenant}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
        .then(async (res) => {
          const answer = (await res.json()) as Answer;
          if (res.status === 429) {
            for (let i = 0; i < granted; i++) out.throttled.push(sentAt);
            await limiter.pause(key, row.limit, retryAfterMs(res.headers.get('retry-after')));
            await settle();
            return;
          }
          let pauseMs = -1;
          for (const r of answer.responses) {
            if (r.status === 429) {
              out.throttled.push(sentAt);
              pauseMs = Math.max(
                pauseMs,
                retryAfterMs(r.headers?.['Retry-After'] ?? r.headers?.['retry-after']),
              );
            } else if (r.status === 200) out.ok.push(sentAt);
          }
          if (pauseMs >= 0) await limiter.pause(key, row.limit, pauseMs);
          await settle();
        })
        .catch((error: unknown) => {
          console.error(`${row.name}: ${String(error)}`);
        });
      const tracked = call.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await new Promise((r) => setTimeout(r, waitMs));
  }
  await Promise.all(inflight);
  return out;
}

function retryAfterMs(header: string | null | undefined): number {
  const sec = Number(header);
  return Number.isFinite(sec) && sec >= 0 ? sec * 1000 : 1000;
}

/** Requests per second sent in [from, to) that got `instants`. */
function perSec(instants: readonly number[], from: number, to: number): number {
  return instants.filter((t) => t >= from && t < to).length / ((to - from) / 1000);
}

function meanRate(samples: ReadonlyArray<[number, number]>, from: number, to: number): number {
  const inside = samples.filter(([t]) => t >= from && t < to).map(([, r]) => r);
  return inside.reduce((a, b) => a + b, 0) / inside.length;
}

async function main(): Promise<void> {
  const redis = await startRedisServer();
  const tenants = Object.fromEntries(
    [...ROWS.map((r) => r.tenant), 'warmup'].map((t) => [
      t,
      { tokens: { [`tok-${t}`]: 'u' }, users: { u: { displayName: 'U' } } },
    ]),
  );
  const fake = await startFakeGraph({
    tenants,
    limits: { requests: { ratePerSec: LIMITS[0], burst: BURST } },
    seed: 19,
  });
  const limiter = RedisLimiter.connect(redis.url, { keyPrefix: 'bench-pacing:' });
  await new Promise<void>((resolve) => limiter.client.once('ready', () => resolve()));
  try {
    console.log(
      `hidden limit ${LIMITS.join(' → ')} requests/s (burst ${BURST}), ${PHASE_MS / 1000} s per phase, ` +
        `pacer ${JSON.stringify(PACE)}`,
    );
    // Warm up the HTTP client and the scripts first: a cold start stalls the event loop for a few
    // hundred ms, long enough to bunch a second burst onto the first at the fake.
    await fetch(`${fake.url}/v1.0/$batch`, {
      method: 'POST',
      headers: { authorization: 'Bearer tok-warmup', 'content-type': 'application/json' },
      body: JSON.stringify({ requests: [{ id: '1', method: 'GET', url: '/me' }] }),
    });
    await limiter.peek('warmup', { ratePerSec: 1, burst: 1 });
    const t0 = performance.now();
    const endAt = t0 + 3 * PHASE_MS;
    const timers = [1, 2].map((i) =>
      setTimeout(
        () => fake.setLimit({ requests: { ratePerSec: LIMITS[i] ?? 0, burst: BURST } }),
        i * PHASE_MS,
      ),
    );
    const outcomes = await Promise.all(ROWS.map((row) => drive(fake, limiter, row, t0, endAt)));
    for (const t of timers) clearTimeout(t);
    const seconds = (3 * PHASE_MS) / 1000;
    const phases = LIMITS.map((L, i) => ({ L, from: (i + 0.5) * PHASE_MS, to: (i + 1) * PHASE_MS }));
    const header = [
      'row',
      '429s',
      '429s by phase',
      '429 share',
      'delivered/s',
      ...phases.flatMap(({ L }, i) => [`P${i + 1} delivered/s (L=${L})`, `P${i + 1} off L`]),
      ...phases.map(({ L }, i) => `P${i + 1} learned (L=${L})`),
    ];
    const rows = ROWS.map((row, r) => {
      const o = outcomes[r] as Outcome;
      const sent = o.ok.length + o.throttled.length;
      return [
        row.name,
        o.throttled.length,
        [0, 1, 2]
          .map((i) => o.throttled.filter((t) => t >= i * PHASE_MS && t < (i + 1) * PHASE_MS).length)
          .join(' / '),
        pct(o.throttled.length / sent),
        num(o.ok.length / seconds),
        ...phases.flatMap(({ L, from, to }) => {
          const d = perSec(o.ok, from, to);
          return [num(d), pct(Math.abs(d - L) / L)];
        }),
        ...phases.map(({ L, from, to }) => {
          if (o.rates.length === 0) return '-';
          const m = meanRate(o.rates, from, to);
          return `${num(m)} (${pct(Math.abs(m - L) / L)})`;
        }),
      ];
    });
    console.log(table(header, rows));
    for (const [r, row] of ROWS.entries()) {
      const rates = (outcomes[r] as Outcome).rates;
      if (rates.length === 0) continue;
      const trace = [];
      for (let s = 0; s < seconds; s++) {
        const at = rates.filter(([t]) => t >= s * 1000 && t < (s + 1) * 1000);
        trace.push(at.length === 0 ? '-' : num(at.at(-1)?.[1] ?? 0, 0));
      }
      console.log(`${row.name}, learned rate at the end of each second: ${trace.join(' ')}`);
    }
  } finally {
    await limiter.close();
    await fake.close();
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
