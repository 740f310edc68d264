// Load generators: open loop (sends scheduled by the clock, never by completions) and closed loop
// (N callers, each sending its next call when the previous one is answered). Both use keep-alive
// undici pools; a "send" is any function that makes one call and resolves with its status.

import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export type Send = (i: number) => Promise<number>;

export interface Call {
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A keep-alive pool to one origin. */
export function pool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
}

/** A send that makes the call `call(i)` through `pools[i % pools.length]` and reads the whole answer. */
export function httpSend(pools: readonly Pool[], call: (i: number) => Call): Send {
  return async (i) => {
    const p = pools[i % pools.length];
    if (!p) throw new Error('no pool');
    const c = call(i);
    const res = await p.request({ method: c.method, path: c.path, headers: c.headers, body: c.body ?? null });
    await res.body.dump({ limit: 1 << 20 });
    return res.statusCode;
  };
}

/** `PUT /v1/{appId}/users/u<n>`: a small write, one resource per call number (mod `distinct`). */
export function putUser(appId: string, secret: string, distinct = 100_000): (i: number) => Call {
  const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
  return (i) => {
    const n = i % distinct;
    return { method: 'PUT', path: `/v1/${appId}/users/u${n}`, headers, body: `{"name":"User ${n}"}` };
  };
}

export interface Counts {
  sent: number;
  completed: number;
  ok: number;
  /** Answered with a status other than 2xx, by status. */
  statuses: Record<number, number>;
  /** Transport errors (no answer). */
  errors: number;
}

export interface LoadRun {
  counts(): Counts;
  /** Latencies (ms, send to end of answer) of the calls answered since the last reset. */
  latencies(): number[];
  resetLatencies(): void;
  /** Resolves when every call is sent (open loop) or when stop() was called (closed loop). */
  readonly allSent: Promise<void>;
  /**
   * Closed loop: stops sending. Open loop: waits until every scheduled call is sent. Then resolves
   * when every call sent is answered or failed (bounded by `graceMs`).
   */
  stop(graceMs?: number): Promise<Counts>;
  /** Open loop: how late the sends left against their schedule, ms (p99 and max). */
  sendLag(): { p99: number; max: number };
}

function tracker() {
  const counts: Counts = { sent: 0, completed: 0, ok: 0, statuses: {}, errors: 0 };
  let lat: number[] = [];
  const inflight = new Set<Promise<void>>();
  const run = (send: Send, i: number): Promise<void> => {
    counts.sent++;
    const t0 = performance.now();
    const p = send(i).then(
      (status) => {
        lat.push(performance.now() - t0);
        counts.completed++;
        if (status >= 200 && status < 300) counts.ok++;
        else counts.statuses[status] = (counts.statuses[status] ?? 0) + 1;
      },
      () => {
        counts.completed++;
        counts.errors++;
      },
    );
    const tracked = p.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    return tracked;
  };
  const settle = async (graceMs: number) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...inflight]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    return { ...counts, statuses: { ...counts.statuses } };
  };
  return {
    counts,
    run,
    settle,
    latencies: () => lat,
    resetLatencies: () => {
      lat = [];
    },
  };
}

/** Sends `ratePerSec` calls a second for `durationMs`, each at its scheduled time. */
export function openLoop(opts: { send: Send; ratePerSec: number; durationMs: number }): LoadRun {
  const t = tracker();
  const total = Math.round((opts.ratePerSec * opts.durationMs) / 1000);
  const lags: number[] = [];
  let next = 0;
  const start = performance.now();
  const allSent = new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * opts.ratePerSec) / 1000) + 1);
      for (; next < due; next++) {
        lags.push(performance.now() - (start + (next * 1000) / opts.ratePerSec));
        void t.run(opts.send, next);
      }
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  return {
    counts: () => ({ ...t.counts }),
    latencies: t.latencies,
    resetLatencies: t.resetLatencies,
    allSent,
    async stop(graceMs = 30_000) {
      await allSent;
      return t.settle(graceMs);
    },
    sendLag() {
      const sorted = [...lags].sort((a, b) => a - b);
      return { p99: percentile(sorted, 99, true), max: sorted[sorted.length - 1] ?? Number.NaN };
    },
  };
}

/** `callers` concurrent callers, each sending its next call as soon as the previous one is answered. */
export function closedLoop(opts: { send: Send; callers: number }): LoadRun {
  const t = tracker();
  let stopped = false;
  let next = 0;
  const workers: Promise<void>[] = [];
  for (let w = 0; w < opts.callers; w++) {
    workers.push(
      (async () => {
        while (!stopped) await t.run(opts.send, next++);
      })(),
    );
  }
  let markStopped: () => void = () => {};
  const allSent = new Promise<void>((resolve) => {
    markStopped = resolve;
  });
  return {
    counts: () => ({ ...t.counts }),
    latencies: t.latencies,
    resetLatencies: t.resetLatencies,
    allSent,
    async stop(graceMs = 30_000) {
      stopped = true;
      markStopped();
      return t.settle(graceMs);
    },
    sendLag: () => ({ p99: 0, max: 0 }),
  };
}

/** Nearest-rank percentile; pass `sorted` when the samples are sorted already. */
export function percentile(samples: readonly number[], p: number, sorted = false): number {
  if (samples.length === 0) return Number.NaN;
  const s = sorted ? samples : [...samples].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] ?? Number.NaN;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
