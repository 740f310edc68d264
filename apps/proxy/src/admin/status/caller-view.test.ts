// Caller figures from the metrics' cumulative series: differences, statuses by kind and source, and
// quantiles as Prometheus' histogram_quantile computes them.

import { describe, expect, it } from 'vitest';
import { type CallerTotals, createMetrics } from '../metrics/metrics.js';
import { callsIn, countsOf, latencyOf, minus, quantile, viewOf } from './caller-view.js';
import { createStatus, type StatusOptions } from './status.js';

/** A status over `callers`, on a manual clock; `second()` moves it one second and samples. */
function setup(overrides: Partial<StatusOptions> = {}) {
  let clock = 1_000_000;
  const status = createStatus({
    snapshot: () => [],
    peek: async () => ({ tokens: 1, cooldownMs: 0 }),
    redisMode: () => 'none',
    limits: { batch: { ratePerSec: 1, burst: 500 }, rest: undefined, maxOps: 10, windowMs: 10 },
    autoSample: false,
    now: () => clock,
    ...overrides,
  });
  return {
    status,
    second: async () => {
      clock += 1_000;
      await status.sample();
    },
  };
}

const LE = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, Infinity];

/** Cumulative buckets from per-bucket counts. */
function cumulative(kind: string, perBucket: number[]) {
  let sum = 0;
  return LE.map((le, i) => {
    sum += perBucket[i] ?? 0;
    return { kind, le, count: sum };
  });
}

describe('quantile', () => {
  it('interpolates linearly within the bucket the rank falls in', () => {
    // 10 calls: 4 in (10, 20] ms, 6 in (20, 50] ms. p50 = rank 5: first of the (20, 50] bucket's 6.
    const buckets = cumulative('batched', [0, 0, 0, 0, 4, 6, 0, 0]);
    expect(quantile(0.5, buckets)).toBeCloseTo(0.02 + 0.03 * (1 / 6), 10);
    expect(quantile(0.99, buckets)).toBeCloseTo(0.02 + 0.03 * (5.9 / 6), 10);
  });

  it('starts the first bucket at 0 and gives the highest finite bound for the +Inf bucket', () => {
    expect(quantile(0.5, cumulative('x', [2]))).toBeCloseTo(0.0005, 10);
    expect(quantile(0.99, cumulative('x', [1, 0, 0, 0, 0, 0, 0, 99]))).toBe(0.1);
  });

  it('is null without calls', () => {
    expect(quantile(0.5, cumulative('x', []))).toBeNull();
    expect(quantile(0.5, [])).toBeNull();
  });
});

describe('caller counts', () => {
  const then: CallerTotals = {
    requests: [{ kind: 'batched', status: '200', source: 'upstream', reason: undefined, count: 5 }],
    latency: cumulative('batched', [0, 0, 0, 5]),
  };
  const now: CallerTotals = {
    requests: [
      { kind: 'batched', status: '200', source: 'upstream', reason: undefined, count: 12 },
      // An op's own 404 inside a batch call that was a 200.
      { kind: 'batched', status: '404', source: 'upstream', reason: undefined, count: 3 },
      { kind: 'batched', status: '429', source: 'proxy', reason: undefined, count: 2 },
      { kind: 'passthrough', status: '200', source: 'upstream', reason: 'header', count: 4 },
      { kind: 'passthrough', status: '200', source: 'upstream', reason: 'query', count: 1 },
      { kind: 'client-batch', status: '200', source: 'upstream', reason: 'route', count: 1 },
      { kind: 'rejected', status: '401', source: 'proxy', reason: undefined, count: 1 },
      { kind: 'rejected', status: '400', source: 'proxy', reason: undefined, count: 0 },
    ],
    latency: [...cumulative('batched', [0, 0, 0, 5, 12]), ...cumulative('passthrough', [0, 0, 0, 0, 0, 5])],
  };

  it('takes differences series by series', () => {
    const d = minus(countsOf(now), countsOf(then));
    expect(callsIn(d)).toBe(7 + 3 + 2 + 4 + 1 + 1 + 1);
    expect(latencyOf(d).count).toBe(12 + 5);
  });

  it('shows every caller status by kind, the proxy’s own answers apart from the upstream’s', () => {
    const v = viewOf(minus(countsOf(now), countsOf(then)));
    expect(v.total).toBe(19);
    expect(v.byKind).toEqual({ batched: 12, passthrough: 5, 'client-batch': 1, rejected: 1 });
    expect(v.statuses).toEqual([
      { status: '200', source: 'upstream', batched: 7, passthrough: 5, clientBatch: 1, rejected: 0 },
      { status: '401', source: 'proxy', batched: 0, passthrough: 0, clientBatch: 0, rejected: 1 },
      { status: '404', source: 'upstream', batched: 3, passthrough: 0, clientBatch: 0, rejected: 0 },
      { status: '429', source: 'proxy', batched: 2, passthrough: 0, clientBatch: 0, rejected: 0 },
    ]);
    expect(v.passthroughReasons).toEqual([
      { reason: 'header', count: 4 },
      { reason: 'query', count: 1 },
      { reason: 'route', count: 1 },
    ]);
  });

  it('gives p50 and p99 overall and by kind, in ms', () => {
    const v = viewOf(minus(countsOf(now), countsOf(then)));
    // Batched: 12 calls, all in (10, 20] ms.
    expect(v.latency.byKind.batched).toEqual({ count: 12, p50Ms: 15, p99Ms: 19.9 });
    // Pass-through: 5 in (20, 50] ms.
    expect(v.latency.byKind.passthrough).toEqual({ count: 5, p50Ms: 35, p99Ms: 49.7 });
    expect(v.latency.byKind.rejected).toEqual({ count: 0, p50Ms: null, p99Ms: null });
    expect(v.latency.all.count).toBe(17);
    expect(v.latency.all.p50Ms).toBeCloseTo(10 + 10 * (8.5 / 12), 2);
  });
});

describe('callers, from the metrics series', () => {
  it('counts every caller with its own status, pass-throughs too, and their latency', async () => {
    const metrics = createMetrics({ queued: () => [], redisFallback: () => false });
    try {
      const { status, second } = setup({ callers: () => metrics.callers() });
      // Ten batched calls in one batch call the upstream answered 200: eight 200s, two 404s inside.
      for (let i = 0; i < 8; i++)
        metrics.request({ kind: 'batched', status: 200, source: 'upstream', seconds: 0.015 });
      for (let i = 0; i < 2; i++)
        metrics.request({ kind: 'batched', status: 404, source: 'upstream', seconds: 0.015 });
      metrics.request({
        kind: 'passthrough',
        status: 201,
        source: 'upstream',
        reason: 'header',
        seconds: 0.04,
      });
      metrics.request({ kind: 'batched', status: 429, source: 'proxy', seconds: 0.0005 });
      await second();

      const s = await status.json();
      expect(s.current.callsPerSec).toBe(12);
      expect(s.history.callsPerSec).toEqual([12]);
      const minute = s.lastMinute.callers;
      expect(minute?.byKind).toEqual({ batched: 11, passthrough: 1, 'client-batch': 0, rejected: 0 });
      expect(minute?.statuses.map((r) => [r.status, r.source, r.batched, r.passthrough])).toEqual([
        ['200', 'upstream', 8, 0],
        ['201', 'upstream', 0, 1],
        ['404', 'upstream', 2, 0],
        ['429', 'proxy', 1, 0],
      ]);
      expect(minute?.passthroughReasons).toEqual([{ reason: 'header', count: 1 }]);
      // Eleven batched: the shed under 1 ms, ten in the (10, 20] ms bucket; rank 5.5 is the 4.5th of those.
      expect(minute?.latency.byKind.batched.p50Ms).toBeCloseTo(10 + 10 * (4.5 / 10), 2);
      expect(minute?.latency.byKind.passthrough.p50Ms).toBe(35);
      expect(s.history.p50Ms[0]).toBe(minute?.latency.all.p50Ms);

      // A minute later the last-minute figures are empty; the totals keep them.
      for (let i = 0; i < 61; i++) await second();
      metrics.request({ kind: 'rejected', status: 401, source: 'proxy', seconds: 0.001 });
      const later = await status.json();
      expect(later.lastMinute.callers?.total).toBe(1);
      expect(later.lastMinute.callers?.statuses).toEqual([
        { status: '401', source: 'proxy', batched: 0, passthrough: 0, clientBatch: 0, rejected: 1 },
      ]);
      expect(later.totals.callers?.total).toBe(13);
      expect(later.history.callsPerSec.at(-1)).toBe(0);
      expect(later.history.p50Ms.at(-1)).toBeNull();
    } finally {
      await metrics.shutdown();
    }
  });

  it('shows the caller figures as null without the metrics series', async () => {
    const { status, second } = setup();
    await second();
    const s = await status.json();
    expect(s.current.callsPerSec).toBeNull();
    expect(s.lastMinute.callers).toBeNull();
    expect(s.history.callsPerSec).toEqual([null]);
  });
});
