// SPEC §8c "Memory is bounded by configuration, not by traffic" and §8d "Bounded whatever the upstream
// does", while the upstream fails: waves of calls for never-seen appIds, each with a never-seen
// credential, reach the engine, and the upstream answers every one of them 500. Each call's group
// (app + credential) counts its failures in its breaker; the app must still be forgotten once idle —
// its breaker state lives in the engine's bounded, expiring failure domains (packages/core/src/batcher/
// domains.ts: at most 10,000 groups, each forgotten after 60 s idle) — so the real process's heap
// after GC stays flat once that bound is reached (RSS is reported beside it).
// (Found: an app whose breaker had counted a failure was never idle, so never evicted: 120,216 new
// appIds while the upstream answered 500 took the heap from 8 to 405 MiB, ~3.4 KB kept per appId.)

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { NO_PACING } from '../harness/env.js';
import { useProxy } from '../harness/use.js';
import { connectInspector, INSPECT_ARGS } from './inspector.js';

/**
 * 4 waves of 5,000 new apps, one call each. After the second wave 10,000 groups have failed: exactly
 * the failure domains' bound (maxGroups, not an environment setting), so from there on every new
 * group pushes the oldest out and what the engine remembers stays the same size. The asserted span,
 * end of wave 2 to end of wave 4, is 10,000 more failing apps. Below the bound the groups themselves
 * grow the heap (~0.4-0.5 KB each, measured from wave 1 to 2), hence waves this large.
 */
const WAVES = 4;
const PER_WAVE = 5000;
const CONCURRENCY = 128;
/**
 * Each failed op is retried once (UPSTREAM_MAX_ATTEMPTS=2), so each group counts 2 failures: fewer than
 * the 5 that open its breaker, and no app has 3 open groups (app-wide), so no call is refused with 503
 * PROXY_CIRCUIT_OPEN: every call is answered 502 once its attempts are spent. With open breakers an
 * app is kept, by design, while its group is remembered, up to the same bound of 10,000 (~4.5 KB an
 * app: measured, the plateau was 63.5 MB instead of 21 MB). Not asserted here: filling that bound
 * with open breakers took over a minute on 2 cores.
 */
const ATTEMPTS = 2;
const BREAKER_FAILURES = 5;
/**
 * Growth of the live heap after GC allowed from the end of the second wave to the end of the last.
 * Seen on a 2-core machine in three runs: 21.8 → 21.1, 21.8 → 20.8, 21.7 → 20.8 MB. What moves between
 * samples: up to ~1,000 apps not yet swept (the engine sweeps every 1,024 new apps), and GC noise
 * (±2.5 MB seen between waves of 2,000 below the bound). An engine that keeps each failing app grows
 * 34-45 MB over these 10,000 apps: ~3.4 KB an app in the finding; ~4.5 KB an app measured here with
 * every breaker open below the bound (CIRCUIT_BREAKER_FAILURES=1, waves of 2,000: heap 21.1, 30.8,
 * 40.5, 48.8 MB, +18 MB from wave 2 to 4), and this assertion then fails. What it cannot reliably tell
 * apart from noise: the groups' own ~0.5 KB each if their map had no bound (~5 MB over 10,000 apps
 * within the 60 s a group lives); domains.test.ts tests that bound.
 */
const BOUND_MB = 5;
/** A call not answered by then hangs (MAX_WAIT_MS is 30 s; every upstream call here is answered at once). */
const HANG_MS = 20_000;

/** Upstream calls by status (the fake's statistics count known apps only; it knows none here). */
const upstreamStatuses = new Map<number, number>();

// No app is known: without its failing credential a call would be 404 APP_NOT_FOUND. A failing
// credential is answered before the app lookup, so each call's credential, added just before the call
// and removed once it is answered, makes the upstream answer it (and its retry) 500.
const { proxy, upstream } = useProxy(
  {
    LOG_LEVEL: 'warn',
    ...NO_PACING,
    BATCH_WINDOW_MS: '1',
    UPSTREAM_MAX_ATTEMPTS: String(ATTEMPTS),
    CIRCUIT_BREAKER_FAILURES: String(BREAKER_FAILURES),
  },
  {
    upstream: {
      apps: {},
      onCall: (call) => {
        upstreamStatuses.set(call.status, (upstreamStatuses.get(call.status) ?? 0) + 1);
      },
    },
    nodeArgs: INSPECT_ARGS,
  },
);

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

// Batched calls only: they are the ones whose failures a group's breaker counts. Calls that bypass the
// queue (x-batch-bypass, the client's own batch) count in no breaker; memory-apps.test.ts covers them.
const ROUTES = [
  (app: string) => ({ method: 'PUT' as const, path: `/v1/${app}/users/u1`, body: '{"name":"x"}' }),
  (app: string) => ({ method: 'GET' as const, path: `/v1/${app}/users/u1` }),
];

interface Wave {
  /** `status code` (the proxy's error code, or the upstream's errorCode) -> calls. */
  answers: Record<string, number>;
  slowestMs: number;
  ms: number;
}

function errorCode(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown }; errorCode?: unknown };
    return String(body.error?.code ?? body.errorCode ?? '');
  } catch {
    return 'not JSON';
  }
}

async function wave(pool: Pool, n: number): Promise<Wave> {
  const started = performance.now();
  const result: Wave = { answers: {}, slowestMs: 0, ms: 0 };
  const failing = upstream.credentials.fail;
  let next = 0;
  const worker = async () => {
    while (next < PER_WAVE) {
      const i = next++;
      const route = (ROUTES[i % ROUTES.length] as (typeof ROUTES)[number])(`fail-${n}-${i}`);
      const credential = `Bearer tok-fail-${n}-${i}`;
      failing.push({ credential, status: 500 });
      const sent = performance.now();
      const res = await pool.request({
        method: route.method,
        path: route.path,
        headers: { authorization: credential, 'content-type': 'application/json' },
        ...('body' in route ? { body: route.body } : {}),
      });
      const key = `${res.statusCode} ${errorCode(await res.body.text())}`;
      result.slowestMs = Math.max(result.slowestMs, performance.now() - sent);
      result.answers[key] = (result.answers[key] ?? 0) + 1;
      failing.splice(
        failing.findIndex((f) => f.credential === credential),
        1,
      );
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  result.ms = performance.now() - started;
  return result;
}

describe('memory under waves of new appIds while the upstream answers 500', () => {
  it('keeps no memory per failing app (heap after GC flat once the failure domains are full) and answers every call', async () => {
    const inspector = await connectInspector(proxy);
    // A call that hangs fails the test here rather than at the test's timeout.
    const pool = new Pool(proxy.url, {
      connections: CONCURRENCY,
      headersTimeout: HANG_MS,
      bodyTimeout: HANG_MS,
    });
    const pid = proxy.child.pid ?? 0;
    const heap: number[] = [];
    const rss: number[] = [];
    const waves: Wave[] = [];
    try {
      for (let n = 0; n < WAVES; n++) {
        waves.push(await wave(pool, n));
        heap.push(Math.round((await inspector.heapAfterGcMb()) * 10) / 10);
        rss.push(Math.round(rssMb(pid)));
      }
    } finally {
      inspector.close();
      await pool.close();
    }
    const seen = waves
      .map((w) => `${Math.round(w.ms / 100) / 10} s (slowest call ${Math.round(w.slowestMs)} ms)`)
      .join(', ');
    const description = `after each wave of ${PER_WAVE}: heap after GC ${heap.join(', ')} MB; RSS ${rss.join(', ')} MB; waves took ${seen}`;

    // Every call answered, the same way: its attempts failed, the breaker still closed.
    for (const w of waves) {
      expect(w.answers, description).toEqual({ '502 PROXY_UPSTREAM_UNAVAILABLE': PER_WAVE });
      expect(w.slowestMs, description).toBeLessThan(HANG_MS);
    }
    // Each op alone in its batch (one app, one credential), tried ATTEMPTS times, answered 500 each time.
    expect(Object.fromEntries(upstreamStatuses)).toEqual({ 500: WAVES * PER_WAVE * ATTEMPTS });
    expect(upstream.credentials.fail).toEqual([]);

    const growth = (heap.at(-1) ?? 0) - (heap[1] ?? 0);
    expect(growth, description).toBeLessThan(BOUND_MB);
    // 16-33 s on a busy 2-core machine: 20,000 calls and 40,000 upstream calls through a real process.
  }, 180_000);
});
