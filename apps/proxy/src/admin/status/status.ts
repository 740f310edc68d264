// The live status page's data (GET /status.json): counts from the engine's observer hooks and the
// caller series of the metrics, sampled once a second into a ring buffer of the last few minutes,
// plus queue depths, limiter buckets (with a burst forecast) and the Redis mode read at request time.
// Inputs are plain functions so it runs without a proxy in tests.
//
// Nothing here sees a credential: the observer hooks carry app ids, lanes and statuses only, and the
// limiter is asked by app id. The page must never show an Authorization value (SPEC §8b).

import { createHash } from 'node:crypto';
import type { BucketLimit, SchedulerObserver } from '@batch-proxy/core';
import {
  type CallerCounts,
  callsIn,
  countsOf,
  latencyOf,
  minus,
  NO_CALLERS,
  type Quantiles,
  viewOf,
} from './caller-view.js';
import { TokenReadings } from './forecast.js';
import { emptyTick, opsOf, Ring, sumTicks, type Tick, type Totals, tickObserver } from './ticks.js';
import type {
  AppStatus,
  BucketName,
  BucketStatus,
  PacedBucketStatus,
  StatusJson,
  StatusOptions,
} from './types.js';

export type * from './types.js';

export interface ProxyStatus {
  /** Feed it the engine's events; compose with the metrics observer through `combineObservers`. */
  readonly observer: Required<SchedulerObserver>;
  json(): Promise<StatusJson>;
  /** Closes the current one-second tick into the history (the timer calls it). */
  sample(): Promise<void>;
  stop(): void;
}

interface Sample {
  /** Wall clock at the end of the interval. */
  readonly t: number;
  readonly seconds: number;
  readonly tick: Tick;
  readonly queued: number;
  readonly inflight: number;
  /** The caller series as they stood at `t` (cumulative); null without them. */
  readonly callers: CallerCounts | null;
  readonly callsPerSec: number | null;
  /** Latency of the callers answered during this interval. */
  readonly latency: Quantiles | null;
}

const SAMPLE_MS = 1_000;
const MINUTE_MS = 60_000;
/** Paced buckets listed on the page. */
const MAX_PACED = 20;

export function createStatus(options: StatusOptions): ProxyStatus {
  const now = options.now ?? Date.now;
  const maxApps = options.maxApps ?? 50;
  const peekTimeoutMs = options.peekTimeoutMs ?? 1_000;
  const history = new Ring<Sample>(Math.max(2, Math.round(options.historySec ?? 300)));
  const readings = new TokenReadings();
  const startedAt = now();
  let tickStart = startedAt;
  let tick = emptyTick();
  let lastCallers = NO_CALLERS;
  const totals: Totals = {
    tick: emptyTick(),
    collapsed: 0,
    requeued: 0,
    limiterDenials: { batch: 0, rest: 0 },
  };
  const observer = tickObserver(() => tick, totals);

  const depth = () => {
    let queued = 0;
    let inflight = 0;
    for (const a of options.snapshot()) {
      queued += a.queued;
      inflight += a.inflight;
    }
    return { queued, inflight };
  };

  const readCallers = async (): Promise<CallerCounts | null> => {
    try {
      return options.callers ? countsOf(await options.callers()) : null;
    } catch {
      // The metrics are being shut down: the caller figures show as unknown.
      return null;
    }
  };

  const close = (callers: CallerCounts | null) => {
    const t = now();
    // Timers drift and a busy event loop delays them: rates divide by the time that really passed.
    const seconds = Math.max(0.001, (t - tickStart) / 1_000);
    const delta = callers ? minus(callers, lastCallers) : null;
    if (callers) lastCallers = callers;
    history.push({
      t,
      seconds,
      tick,
      ...depth(),
      callers,
      callsPerSec: delta ? rate(callsIn(delta), seconds) : null,
      latency: delta ? latencyOf(delta) : null,
    });
    tick = emptyTick();
    tickStart = t;
  };
  // Without caller series nothing is awaited, so a sample is in the history as soon as it returns.
  const sample = (): Promise<void> =>
    options.callers ? readCallers().then(close) : Promise.resolve(close(null));

  const timer = options.autoSample === false ? undefined : setInterval(() => void sample(), SAMPLE_MS);
  // The sampler must not keep a process alive that is otherwise done.
  timer?.unref();

  const bucket = async (
    appId: string,
    name: BucketName,
    limit: BucketLimit,
    at: number,
  ): Promise<BucketStatus> => {
    let timeout: NodeJS.Timeout | undefined;
    let seen: { tokens: number; cooldownMs: number } | undefined;
    try {
      seen = await Promise.race([
        options.peek(appId, name, limit),
        new Promise<undefined>((resolve) => {
          timeout = setTimeout(() => resolve(undefined), peekTimeoutMs);
        }),
      ]);
    } catch {
      // The limiter's own failure handling (Redis fallback) is reported by `redis`; here: unknown.
    } finally {
      clearTimeout(timeout);
    }
    const forecast = readings.observe(readingKey(appId, name), at, seen?.tokens ?? null);
    if (seen) return { ...limit, tokens: seen.tokens, cooldownMs: round(seen.cooldownMs), forecast };
    return { ...limit, tokens: null, cooldownMs: null, forecast };
  };

  const appsNow = async (at: number) => {
    const snapshot = [...options.snapshot()];
    snapshot.sort((x, y) => y.queued + y.inflight - (x.queued + x.inflight) || cmp(x.appId, y.appId));
    const { batch, rest } = options.limits;
    const listed = snapshot.slice(0, maxApps);
    const apps = await Promise.all(
      listed.map(async (a): Promise<AppStatus> => {
        const groups = options.groups?.(a.appId);
        const [batchBucket, restBucket] = await Promise.all([
          bucket(a.appId, 'batch', batch, at),
          rest ? bucket(a.appId, 'rest', rest, at) : null,
        ]);
        return {
          appId: a.appId,
          queued: a.queued,
          inflight: a.inflight,
          batch: batchBucket,
          rest: restBucket,
          circuit: a.circuit ?? 'closed',
          openGroups: a.openGroups ?? 0,
          appWide: a.appWide ?? false,
          pausedGroups: a.pausedGroups ?? 0,
          groups: groups?.busiest ?? [],
          otherGroups: groups?.other ?? { groups: 0, queued: 0 },
        };
      }),
    );
    readings.retain(
      new Set(listed.flatMap((a) => [readingKey(a.appId, 'batch'), readingKey(a.appId, 'rest')])),
    );
    let queued = 0;
    let inflight = 0;
    for (const a of snapshot) {
      queued += a.queued;
      inflight += a.inflight;
    }
    return { apps, total: snapshot.length, queued, inflight };
  };

  const build = async (): Promise<StatusJson> => {
    const callersNow = await readCallers();
    const at = now();
    const samples = history.toArray();
    const last = samples.at(-1);
    // The tick in progress belongs to the last minute too, so a status seen at once shows.
    const minute = [...samples.filter((s) => s.t > at - MINUTE_MS).map((s) => s.tick), tick];
    // The caller series a minute ago (or as far back as the history goes, or zero at start).
    const before =
      samples.filter((s) => s.t <= at - MINUTE_MS).at(-1) ??
      (samples.length === history.capacity ? samples[0] : undefined);
    const { apps, total, queued, inflight } = await appsNow(at);
    const { batch, rest } = options.limits;
    const all = totals.tick;
    const lastMinute = sumTicks(minute);

    return {
      now: at,
      startedAt,
      redis: options.redisMode(),
      config: { maxOps: options.limits.maxOps, windowMs: options.limits.windowMs, batch, rest: rest ?? null },
      current: {
        opsPerSec: last ? rate(opsOf(last.tick), last.seconds) : 0,
        callsPerSec: callersNow ? (last?.callsPerSec ?? 0) : null,
        batchesPerSec: last ? rate(last.tick.batches, last.seconds) : 0,
        fill: last ? fillOf(last.tick.batches, last.tick.batchOps) : null,
        fillMinute: fillOf(lastMinute.batches, lastMinute.batchOps),
        queued,
        inflight,
        upstream429PerSec: last ? rate(last.tick.upstream429, last.seconds) : 0,
        shedPerSec: last ? rate(last.tick.shed, last.seconds) : 0,
      },
      totals: {
        ops: opsOf(all),
        opsByLane: { ...all.ops },
        batches: all.batches,
        batchOps: all.batchOps,
        singles: all.singles,
        upstream429: all.upstream429,
        shed: { ...all.shedBy },
        collapsed: totals.collapsed,
        requeued: totals.requeued,
        limiterDenials: { ...totals.limiterDenials },
        callers: callersNow ? viewOf(callersNow) : null,
      },
      lastMinute: {
        opsByLane: lastMinute.ops,
        upstreamStatus: lastMinute.upstreamStatus,
        shed: lastMinute.shedBy,
        callers: callersNow ? viewOf(minus(callersNow, before?.callers ?? NO_CALLERS)) : null,
      },
      apps,
      pacing: pacingOf(options.pacing),
      appsTotal: total,
      history: {
        intervalMs: SAMPLE_MS,
        capacity: history.capacity,
        t: samples.map((s) => s.t),
        opsPerSec: samples.map((s) => rate(opsOf(s.tick), s.seconds)),
        callsPerSec: samples.map((s) => s.callsPerSec),
        batchesPerSec: samples.map((s) => rate(s.tick.batches, s.seconds)),
        fill: samples.map((s) => fillOf(s.tick.batches, s.tick.batchOps)),
        queued: samples.map((s) => s.queued),
        upstream429PerSec: samples.map((s) => rate(s.tick.upstream429, s.seconds)),
        shedPerSec: samples.map((s) => rate(s.tick.shed, s.seconds)),
        p50Ms: samples.map((s) => s.latency?.p50Ms ?? null),
        p99Ms: samples.map((s) => s.latency?.p99Ms ?? null),
      },
    };
  };

  // Several open pages poll at once: they share one build (and one round of limiter peeks).
  let building: Promise<StatusJson> | undefined;
  const json = () => {
    building ??= build().finally(() => {
      building = undefined;
    });
    return building;
  };

  return { observer, json, sample, stop: () => clearInterval(timer) };
}

function pacingOf(pacing: StatusOptions['pacing']): StatusJson['pacing'] {
  if (pacing === undefined) return null;
  const buckets = pacing.board.recent(MAX_PACED).map(
    (b): PacedBucketStatus => ({
      // Hashed: the key names the upstream and the app, and the page lists buckets, not tenants.
      key: createHash('sha256').update(b.key).digest('hex').slice(0, 12),
      ratePerSec: round(b.ratePerSec),
      lastDecreaseAgoMs: b.sinceDecreaseMs === undefined ? null : Math.round(b.sinceDecreaseMs),
    }),
  );
  return { maxRatePerSec: pacing.maxRatePerSec, buckets };
}

function readingKey(appId: string, bucket: BucketName): string {
  return `${bucket} ${appId}`;
}

function rate(count: number, seconds: number): number {
  return round(count / seconds);
}

function fillOf(batches: number, ops: number): number | null {
  return batches === 0 ? null : round(ops / batches);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
