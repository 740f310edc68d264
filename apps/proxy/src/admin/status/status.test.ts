// The status sampler without a proxy process: plain functions in. Caller figures are tested in
// caller-view.test.ts, the forecast math in forecast.test.ts, the page in page.test.ts.

import { describe, expect, it, vi } from 'vitest';
import { LIMITS, statusOptions } from './status.fixture.js';
import { type AppSnapshot, createStatus, type StatusOptions } from './status.js';

const EMPTY = { state: 'empty', drainPerSec: null, emptyInMs: null };
const MEASURING = { state: 'measuring', drainPerSec: null, emptyInMs: null };

function setup(overrides: Partial<StatusOptions> = {}) {
  let clock = 1_000_000;
  let apps: AppSnapshot[] = [];
  const status = createStatus(statusOptions(() => apps, { now: () => clock, ...overrides }));
  return {
    status,
    o: status.observer,
    setApps: (next: AppSnapshot[]) => {
      apps = next;
    },
    /** Moves the clock one second and closes the tick. */
    second: async () => {
      clock += 1_000;
      await status.sample();
    },
  };
}

describe('createStatus', () => {
  it('shows no pacing block with fixed rates', async () => {
    const { status } = setup();
    expect((await status.json()).pacing).toBeNull();
  });

  it('shows the learned rate, the bound and the last decrease of the paced buckets, keys hashed', async () => {
    const seen: number[] = [];
    const board = {
      recent: (n: number) => {
        seen.push(n);
        return [
          { key: 'https://graph.example|app-1|batch', ratePerSec: 61.666666, sinceDecreaseMs: 1234.5 },
          { key: 'https://graph.example|app-2|batch', ratePerSec: 140, sinceDecreaseMs: undefined },
        ];
      },
    };
    const { status } = setup({ pacing: { board, maxRatePerSec: 200 } });
    const s = await status.json();
    expect(seen).toEqual([20]);
    expect(s.pacing).toEqual({
      maxRatePerSec: 200,
      buckets: [
        { key: expect.stringMatching(/^[0-9a-f]{12}$/), ratePerSec: 61.67, lastDecreaseAgoMs: 1235 },
        { key: expect.stringMatching(/^[0-9a-f]{12}$/), ratePerSec: 140, lastDecreaseAgoMs: null },
      ],
    });
    const [first, second] = s.pacing?.buckets ?? [];
    expect(first?.key).not.toBe(second?.key);
    expect(JSON.stringify(s)).not.toContain('app-1');
  });

  it('reports the last second as rates and the average batch fill', async () => {
    const { status, o, second } = setup();
    o.onFlush({ appId: 'a', lane: 'batch', size: 10, reason: 'full' });
    o.onFlush({ appId: 'a', lane: 'batch', size: 4, reason: 'window' });
    o.onFlush({ appId: 'a', lane: 'single', size: 1, reason: 'single-lane' });
    for (let i = 0; i < 14; i++) o.onAnswer({ appId: 'a', lane: 'batch', status: 200, queueMs: 5 });
    o.onAnswer({ appId: 'a', lane: 'single', status: 201, queueMs: 5 });
    o.onAnswer({ appId: 'a', lane: undefined, status: 503, queueMs: 5 });
    await second();

    const s = await status.json();
    expect(s.current).toMatchObject({ opsPerSec: 16, batchesPerSec: 2, fill: 7, fillMinute: 7 });
    expect(s.totals).toMatchObject({
      ops: 16,
      opsByLane: { batch: 14, single: 1, none: 1 },
      batches: 2,
      batchOps: 14,
      singles: 1,
    });
    expect(s.history.opsPerSec).toEqual([16]);
    expect(s.history.fill).toEqual([7]);
  });

  it('shows no fill (null) for a second without a batch, and counts ops still in the open tick', async () => {
    const { status, o, second } = setup();
    await second();
    o.onAnswer({ appId: 'a', lane: 'batch', status: 200, queueMs: 5 });
    const s = await status.json();
    expect(s.current.fill).toBeNull();
    expect(s.history.fill).toEqual([null]);
    expect(s.totals.ops).toBe(1);
    expect(s.lastMinute.opsByLane.batch).toBe(1);
  });

  it('divides by the time that really passed when the timer fires late', async () => {
    let clock = 0;
    const status = createStatus(
      statusOptions(() => [], { peek: async () => ({ tokens: 0, cooldownMs: 0 }), now: () => clock }),
    );
    for (let i = 0; i < 10; i++)
      status.observer.onAnswer({ appId: 'a', lane: 'batch', status: 200, queueMs: 1 });
    clock = 2_000;
    await status.sample();
    expect((await status.json()).current.opsPerSec).toBe(5);
  });

  it('counts upstream statuses of the last minute by lane and forgets older ones', async () => {
    const { status, o, second } = setup();
    o.onUpstream({ appId: 'a', lane: 'batch', status: 429, ms: 3 });
    await second();
    for (let i = 0; i < 60; i++) await second();
    o.onUpstream({ appId: 'a', lane: 'batch', status: 200, ms: 3 });
    o.onUpstream({ appId: 'a', lane: 'batch', status: 200, ms: 3 });
    o.onUpstream({ appId: 'a', lane: 'single', status: 200, ms: 3 });
    o.onUpstream({ appId: 'a', lane: 'single', status: 'error', ms: 3 });
    o.onUpstream({ appId: 'a', lane: 'single', status: 429, ms: 3 });
    await second();
    const s = await status.json();
    expect(s.lastMinute.upstreamStatus).toEqual([
      { status: '200', batch: 2, single: 1 },
      { status: '429', batch: 0, single: 1 },
      { status: 'error', batch: 0, single: 1 },
    ]);
    expect(s.totals.upstream429).toBe(2);
    expect(s.current.upstream429PerSec).toBe(1);
  });

  it('keeps historySec samples, oldest first', async () => {
    const { status, o, second } = setup({ historySec: 3 });
    for (let i = 1; i <= 5; i++) {
      for (let k = 0; k < i; k++) o.onAnswer({ appId: 'a', lane: 'batch', status: 200, queueMs: 1 });
      await second();
    }
    const s = await status.json();
    expect(s.history.capacity).toBe(3);
    expect(s.history.opsPerSec).toEqual([3, 4, 5]);
    expect(s.history.t).toEqual([...s.history.t].sort((a, b) => a - b));
  });

  it('samples queue depth each second and lists apps busiest first with both buckets', async () => {
    const peek = vi.fn(async (appId: string, bucket: 'batch' | 'rest') =>
      bucket === 'batch'
        ? { tokens: appId === 'quiet' ? 500 : 0, cooldownMs: 250.4 }
        : { tokens: 3, cooldownMs: 0 },
    );
    const busyGroups = [
      { group: 'aaaaaaaaaaaa', queued: 30, circuit: 'open' as const, pausedMs: 0, paceMs: 0 },
      { group: 'bbbbbbbbbbbb', queued: 10, circuit: 'closed' as const, pausedMs: 2_000, paceMs: 1_000 },
    ];
    const { status, setApps, second } = setup({
      peek,
      limits: { ...LIMITS, rest: { ratePerSec: 5, burst: 5 } },
      groups: (appId) =>
        appId === 'busy'
          ? { busiest: busyGroups, other: { groups: 7, queued: 0 } }
          : { busiest: [], other: { groups: 0, queued: 0 } },
    });
    setApps([
      { appId: 'quiet', queued: 0, inflight: 1 },
      {
        appId: 'busy',
        queued: 40,
        inflight: 10,
        circuit: 'open',
        openGroups: 3,
        appWide: true,
        pausedGroups: 1,
      },
    ]);
    await second();
    const s = await status.json();
    expect(s.history.queued).toEqual([40]);
    expect(s.current).toMatchObject({ queued: 40, inflight: 11 });
    expect(s.apps.map((a) => a.appId)).toEqual(['busy', 'quiet']);
    expect(s.apps[0]).toEqual({
      appId: 'busy',
      queued: 40,
      inflight: 10,
      batch: { ratePerSec: 1, burst: 500, tokens: 0, cooldownMs: 250.4, forecast: EMPTY },
      rest: { ratePerSec: 5, burst: 5, tokens: 3, cooldownMs: 0, forecast: MEASURING },
      circuit: 'open',
      openGroups: 3,
      appWide: true,
      pausedGroups: 1,
      groups: busyGroups,
      otherGroups: { groups: 7, queued: 0 },
    });
    expect(s.apps[1]).toMatchObject({ circuit: 'closed', openGroups: 0, appWide: false, pausedGroups: 0 });
    expect(peek).toHaveBeenCalledWith('busy', 'rest', { ratePerSec: 5, burst: 5 });
  });

  it('lists at most maxApps apps and counts the rest', async () => {
    const { status, setApps } = setup({ maxApps: 2 });
    setApps([1, 2, 3].map((i) => ({ appId: `app${i}`, queued: i, inflight: 0 })));
    const s = await status.json();
    expect(s.apps.map((a) => a.appId)).toEqual(['app3', 'app2']);
    expect(s.appsTotal).toBe(3);
  });

  it('totals queued and in-flight ops over every app, not only the listed ones', async () => {
    // More apps than the page lists: the quiet ones still count in the tiles and charts.
    const { status, setApps, second } = setup({ maxApps: 2 });
    setApps([1, 2, 3, 4, 5].map((i) => ({ appId: `app${i}`, queued: 10 * i, inflight: i })));
    await second();
    const s = await status.json();
    expect(s.apps.map((a) => a.appId)).toEqual(['app5', 'app4']);
    expect(s.appsTotal).toBe(5);
    expect(s.current).toMatchObject({ queued: 150, inflight: 15 });
    expect(s.history.queued).toEqual([150]);
  });

  it('shows a bucket as unknown when the limiter fails or is slow, without holding the answer', async () => {
    const { status, setApps } = setup({
      peekTimeoutMs: 20,
      peek: (appId) => (appId === 'slow' ? new Promise(() => {}) : Promise.reject(new Error('down'))),
    });
    setApps([
      { appId: 'slow', queued: 1, inflight: 0 },
      { appId: 'failing', queued: 0, inflight: 0 },
    ]);
    const s = await status.json();
    expect(s.apps.map((a) => a.batch.tokens)).toEqual([null, null]);
    expect(s.apps[0]?.rest).toBeNull();
  });

  it('reports the Redis mode, shed, denials, collapsed reads and requeues', async () => {
    let mode: 'shared' | 'fallback' = 'shared';
    const { status, o } = setup({ redisMode: () => mode });
    o.onShed({ appId: 'a', code: 'PROXY_QUEUE_FULL' });
    o.onShed({ appId: 'a', code: 'PROXY_DEADLINE_EXCEEDED' });
    o.onShed({ appId: 'a', code: 'PROXY_DEADLINE_EXCEEDED' });
    o.onShed({ appId: 'a', code: 'PROXY_CIRCUIT_OPEN' });
    o.onLimiter({ appId: 'a', bucket: 'batch', granted: false, waitMs: 10 });
    o.onLimiter({ appId: 'a', bucket: 'batch', granted: true, waitMs: 0 });
    o.onLimiter({ appId: 'a', bucket: 'rest', granted: false, waitMs: 10 });
    o.onCollapsed({ appId: 'a' });
    o.onRequeue({ appId: 'a', reason: '429', count: 4 });
    expect((await status.json()).redis).toBe('shared');
    mode = 'fallback';
    const s = await status.json();
    expect(s.redis).toBe('fallback');
    expect(s.totals).toMatchObject({
      shed: { queueFull: 1, deadline: 2, circuitOpen: 1 },
      limiterDenials: { batch: 1, rest: 1 },
      collapsed: 1,
      requeued: 4,
    });
  });

  it('shares one build between pages that poll at the same moment', async () => {
    const peek = vi.fn(async () => ({ tokens: 1, cooldownMs: 0 }));
    const { status, setApps } = setup({ peek });
    setApps([{ appId: 'a', queued: 1, inflight: 0 }]);
    const [x, y] = await Promise.all([status.json(), status.json()]);
    expect(x).toBe(y);
    expect(peek).toHaveBeenCalledTimes(1);
  });

  it('samples on its own every second until stopped', async () => {
    vi.useFakeTimers();
    try {
      const status = createStatus({
        snapshot: () => [],
        peek: async () => ({ tokens: 0, cooldownMs: 0 }),
        redisMode: () => 'none',
        limits: LIMITS,
      });
      vi.advanceTimersByTime(3_000);
      expect((await status.json()).history.t).toHaveLength(3);
      status.stop();
      vi.advanceTimersByTime(3_000);
      expect((await status.json()).history.t).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('sheds and the burst forecast', () => {
  it('keeps sheds apart from upstream 429s, by code, in the last minute', async () => {
    const { status, o, second } = setup();
    o.onUpstream({ appId: 'a', lane: 'batch', status: 429, ms: 3 });
    o.onShed({ appId: 'a', code: 'PROXY_DEADLINE_EXCEEDED' });
    o.onShed({ appId: 'a', code: 'PROXY_DEADLINE_EXCEEDED' });
    o.onShed({ appId: 'a', code: 'PROXY_QUEUE_FULL' });
    await second();
    const s = await status.json();
    expect(s.current).toMatchObject({ upstream429PerSec: 1, shedPerSec: 3 });
    expect(s.lastMinute.shed).toEqual({ queueFull: 1, deadline: 2, circuitOpen: 0 });
    expect(s.lastMinute.upstreamStatus).toEqual([{ status: '429', batch: 1, single: 0 }]);
  });

  it('forecasts when each listed app’s burst runs out from the tokens read at each poll', async () => {
    let tokens = 500;
    const { status, setApps, second } = setup({ peek: async () => ({ tokens, cooldownMs: 0 }) });
    setApps([{ appId: 'a', queued: 5, inflight: 1 }]);
    expect((await status.json()).apps[0]?.batch.forecast.state).toBe('measuring');
    for (let i = 0; i < 4; i++) {
      tokens -= 6;
      await second();
      await status.json();
    }
    tokens -= 6;
    await second();
    const s = await status.json();
    // 470 left, 6 a second: 78 s.
    expect(s.apps[0]?.batch.forecast).toEqual({ state: 'draining', drainPerSec: 6, emptyInMs: 78_333 });
  });
});
