// The live status page's data (GET /status.json): counts from the engine's observer hooks, sampled
// once a second into a ring buffer of the last few minutes, plus queue depths, limiter buckets and the
// Redis mode read at request time. Inputs are plain functions so it runs without a proxy in tests.
//
// Nothing here sees a credential: the observer hooks carry app ids, lanes and statuses only, and the
// limiter is asked by app id. The page must never show an Authorization value (SPEC §8b).

import type { BucketLimit, Lane, SchedulerObserver } from '@batch-proxy/core';

export type RedisMode = 'shared' | 'fallback' | 'none';
export type BucketName = 'batch' | 'rest';
/** `none`: answered without an upstream call (shed, expired, caller gone). */
export type LaneLabel = Lane | 'none';

export interface AppSnapshot {
  readonly appId: string;
  readonly queued: number;
  readonly inflight: number;
  /** The app's circuit breaker (SPEC §8c); absent = closed. */
  readonly circuit?: 'closed' | 'open' | 'half-open';
}

export interface StatusOptions {
  /** Per-app queue depths, e.g. `() => scheduler.snapshot()`. */
  readonly snapshot: () => readonly AppSnapshot[];
  /** Read-only look at one bucket, e.g. `limiter.peek(bucketKey(origin, appId, bucket), limit)`. */
  readonly peek: (
    appId: string,
    bucket: BucketName,
    limit: BucketLimit,
  ) => Promise<{ tokens: number; cooldownMs: number }>;
  readonly redisMode: () => RedisMode;
  readonly limits: {
    readonly batch: BucketLimit;
    /** Undefined when no single-call budget is configured. */
    readonly rest: BucketLimit | undefined;
    readonly maxOps: number;
    readonly windowMs: number;
  };
  /** Seconds of history kept for the charts. Default 300. */
  readonly historySec?: number;
  /** Apps listed with their buckets, busiest first; the others are only counted. Default 50. */
  readonly maxApps?: number;
  /** A peek slower than this shows the bucket as unknown instead of holding the page. Default 1000. */
  readonly peekTimeoutMs?: number;
  /** Wall clock in ms. Default `Date.now`. */
  readonly now?: () => number;
  /** Sample every second on a timer. Default true; tests call `sample()` themselves. */
  readonly autoSample?: boolean;
}

export interface BucketStatus {
  readonly ratePerSec: number;
  readonly burst: number;
  /** Whole tokens left; null when the limiter did not answer in time. */
  readonly tokens: number | null;
  /** Time until the bucket grants again (0 while it has tokens); null when unknown. */
  readonly cooldownMs: number | null;
}

export interface AppStatus {
  readonly appId: string;
  readonly queued: number;
  readonly inflight: number;
  readonly batch: BucketStatus;
  readonly rest: BucketStatus | null;
  /** `open`: the upstream kept failing, calls are answered 503 at once until a probe succeeds. */
  readonly circuit: 'closed' | 'open' | 'half-open';
}

export interface StatusJson {
  /** Wall clock (ms since the epoch) when this was built. */
  readonly now: number;
  readonly startedAt: number;
  readonly redis: RedisMode;
  readonly config: {
    readonly maxOps: number;
    readonly windowMs: number;
    readonly batch: BucketLimit;
    readonly rest: BucketLimit | null;
  };
  /** The last complete one-second sample, queue depths as of now. */
  readonly current: {
    readonly opsPerSec: number;
    readonly batchesPerSec: number;
    /** Average ops per batch call in the last sample; null when no batch left. */
    readonly fill: number | null;
    /** Same over the last minute. */
    readonly fillMinute: number | null;
    readonly queued: number;
    readonly inflight: number;
    readonly upstream429PerSec: number;
    readonly shedPerSec: number;
  };
  /** Since the process started. */
  readonly totals: {
    /** Callers answered, one per waiter (collapsed reads count each caller). */
    readonly ops: number;
    readonly opsByLane: Record<LaneLabel, number>;
    readonly batches: number;
    readonly batchOps: number;
    readonly singles: number;
    readonly upstream429: number;
    readonly shed: { readonly queueFull: number; readonly deadline: number; readonly circuitOpen: number };
    readonly collapsed: number;
    readonly requeued: number;
    readonly limiterDenials: Record<BucketName, number>;
  };
  readonly lastMinute: {
    readonly opsByLane: Record<LaneLabel, number>;
    /** Upstream HTTP calls by status (`error`: no answer), split by lane, status ascending. */
    readonly upstreamStatus: ReadonlyArray<{ status: string; batch: number; single: number }>;
  };
  readonly apps: readonly AppStatus[];
  /** Apps known to the engine; `apps` lists at most `maxApps` of them. */
  readonly appsTotal: number;
  /** One point per sample, oldest first. */
  readonly history: {
    readonly intervalMs: number;
    /** Points kept: the charts span `capacity × intervalMs`. */
    readonly capacity: number;
    readonly t: number[];
    readonly opsPerSec: number[];
    readonly batchesPerSec: number[];
    readonly fill: Array<number | null>;
    readonly queued: number[];
    readonly upstream429PerSec: number[];
    readonly shedPerSec: number[];
  };
}

export interface ProxyStatus {
  /** Feed it the engine's events; compose with the metrics observer through `combineObservers`. */
  readonly observer: Required<SchedulerObserver>;
  json(): Promise<StatusJson>;
  /** Closes the current one-second tick into the history (the timer calls it). */
  sample(): void;
  stop(): void;
}

export { combineObservers } from './observers.js';

/** What happened during one sample interval. */
interface Tick {
  readonly ops: Record<LaneLabel, number>;
  batches: number;
  batchOps: number;
  singles: number;
  upstream429: number;
  shed: number;
  /** Upstream calls by `${lane} ${status}`. */
  readonly upstream: Map<string, number>;
}

interface Sample {
  /** Wall clock at the end of the interval. */
  readonly t: number;
  readonly seconds: number;
  readonly tick: Tick;
  readonly queued: number;
  readonly inflight: number;
}

const SAMPLE_MS = 1_000;
const MINUTE_MS = 60_000;

function emptyTick(): Tick {
  return {
    ops: { batch: 0, single: 0, none: 0 },
    batches: 0,
    batchOps: 0,
    singles: 0,
    upstream429: 0,
    shed: 0,
    upstream: new Map(),
  };
}

/** Fixed-size history, oldest overwritten first. */
class Ring<T> {
  readonly #items: T[] = [];
  #next = 0;

  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item);
    else this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    if (this.#items.length < this.capacity) return [...this.#items];
    return [...this.#items.slice(this.#next), ...this.#items.slice(0, this.#next)];
  }
}

export function createStatus(options: StatusOptions): ProxyStatus {
  const now = options.now ?? Date.now;
  const maxApps = options.maxApps ?? 50;
  const peekTimeoutMs = options.peekTimeoutMs ?? 1_000;
  const history = new Ring<Sample>(Math.max(2, Math.round(options.historySec ?? 300)));
  const startedAt = now();
  let tickStart = startedAt;
  let tick = emptyTick();
  const totals = {
    tick: emptyTick(),
    shed: { queueFull: 0, deadline: 0, circuitOpen: 0 },
    collapsed: 0,
    requeued: 0,
    limiterDenials: { batch: 0, rest: 0 },
  };
  const both = (f: (t: Tick) => void) => {
    f(tick);
    f(totals.tick);
  };

  const observer: Required<SchedulerObserver> = {
    onFlush: (e) =>
      both((t) => {
        if (e.lane === 'batch') {
          t.batches++;
          t.batchOps += e.size;
        } else t.singles++;
      }),
    onUpstream: (e) =>
      both((t) => {
        const key = `${e.lane} ${e.status}`;
        t.upstream.set(key, (t.upstream.get(key) ?? 0) + 1);
        if (e.status === 429) t.upstream429++;
      }),
    onAnswer: (e) =>
      both((t) => {
        t.ops[e.lane ?? 'none']++;
      }),
    onCollapsed: () => {
      totals.collapsed++;
    },
    onShed: (e) => {
      both((t) => {
        t.shed++;
      });
      if (e.code === 'PROXY_QUEUE_FULL') totals.shed.queueFull++;
      else if (e.code === 'PROXY_CIRCUIT_OPEN') totals.shed.circuitOpen++;
      else totals.shed.deadline++;
    },
    onLimiter: (e) => {
      if (!e.granted) totals.limiterDenials[e.bucket]++;
    },
    onRequeue: (e) => {
      totals.requeued += e.count;
    },
  };

  const depth = () => {
    let queued = 0;
    let inflight = 0;
    for (const a of options.snapshot()) {
      queued += a.queued;
      inflight += a.inflight;
    }
    return { queued, inflight };
  };

  const sample = () => {
    const t = now();
    // Timers drift and a busy event loop delays them: rates divide by the time that really passed.
    const seconds = Math.max(0.001, (t - tickStart) / 1_000);
    history.push({ t, seconds, tick, ...depth() });
    tick = emptyTick();
    tickStart = t;
  };

  const timer = options.autoSample === false ? undefined : setInterval(sample, SAMPLE_MS);
  // The sampler must not keep a process alive that is otherwise done.
  timer?.unref();

  const bucket = async (appId: string, name: BucketName, limit: BucketLimit): Promise<BucketStatus> => {
    let timeout: NodeJS.Timeout | undefined;
    try {
      const seen = await Promise.race([
        options.peek(appId, name, limit),
        new Promise<undefined>((resolve) => {
          timeout = setTimeout(() => resolve(undefined), peekTimeoutMs);
        }),
      ]);
      if (seen) return { ...limit, tokens: seen.tokens, cooldownMs: round(seen.cooldownMs) };
    } catch {
      // The limiter's own failure handling (Redis fallback) is reported by `redis`; here: unknown.
    } finally {
      clearTimeout(timeout);
    }
    return { ...limit, tokens: null, cooldownMs: null };
  };

  const build = async (): Promise<StatusJson> => {
    const at = now();
    const samples = history.toArray();
    const last = samples.at(-1);
    const minute = samples.filter((s) => s.t > at - MINUTE_MS).map((s) => s.tick);
    // The tick in progress belongs to the last minute too, so a status seen at once shows.
    minute.push(tick);

    const snapshot = [...options.snapshot()];
    let queued = 0;
    let inflight = 0;
    for (const a of snapshot) {
      queued += a.queued;
      inflight += a.inflight;
    }
    snapshot.sort((x, y) => y.queued + y.inflight - (x.queued + x.inflight) || cmp(x.appId, y.appId));
    const { batch, rest } = options.limits;
    const apps = await Promise.all(
      snapshot.slice(0, maxApps).map(async (a): Promise<AppStatus> => {
        const [batchBucket, restBucket] = await Promise.all([
          bucket(a.appId, 'batch', batch),
          rest ? bucket(a.appId, 'rest', rest) : null,
        ]);
        return {
          appId: a.appId,
          queued: a.queued,
          inflight: a.inflight,
          batch: batchBucket,
          rest: restBucket,
          circuit: a.circuit ?? 'closed',
        };
      }),
    );

    const opsMinute = { batch: 0, single: 0, none: 0 };
    const statuses = new Map<string, { status: string; batch: number; single: number }>();
    let minuteBatches = 0;
    let minuteBatchOps = 0;
    for (const t of minute) {
      opsMinute.batch += t.ops.batch;
      opsMinute.single += t.ops.single;
      opsMinute.none += t.ops.none;
      minuteBatches += t.batches;
      minuteBatchOps += t.batchOps;
      for (const [key, count] of t.upstream) {
        const [lane, status = ''] = key.split(' ');
        const row = statuses.get(status) ?? { status, batch: 0, single: 0 };
        if (lane === 'batch') row.batch += count;
        else row.single += count;
        statuses.set(status, row);
      }
    }

    const all = totals.tick;
    return {
      now: at,
      startedAt,
      redis: options.redisMode(),
      config: { maxOps: options.limits.maxOps, windowMs: options.limits.windowMs, batch, rest: rest ?? null },
      current: {
        opsPerSec: last ? rate(opsOf(last.tick), last.seconds) : 0,
        batchesPerSec: last ? rate(last.tick.batches, last.seconds) : 0,
        fill: last ? fillOf(last.tick.batches, last.tick.batchOps) : null,
        fillMinute: fillOf(minuteBatches, minuteBatchOps),
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
        shed: { ...totals.shed },
        collapsed: totals.collapsed,
        requeued: totals.requeued,
        limiterDenials: { ...totals.limiterDenials },
      },
      lastMinute: {
        opsByLane: opsMinute,
        upstreamStatus: [...statuses.values()].sort((x, y) => cmp(x.status, y.status)),
      },
      apps,
      appsTotal: snapshot.length,
      history: {
        intervalMs: SAMPLE_MS,
        capacity: history.capacity,
        t: samples.map((s) => s.t),
        opsPerSec: samples.map((s) => rate(opsOf(s.tick), s.seconds)),
        batchesPerSec: samples.map((s) => rate(s.tick.batches, s.seconds)),
        fill: samples.map((s) => fillOf(s.tick.batches, s.tick.batchOps)),
        queued: samples.map((s) => s.queued),
        upstream429PerSec: samples.map((s) => rate(s.tick.upstream429, s.seconds)),
        shedPerSec: samples.map((s) => rate(s.tick.shed, s.seconds)),
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

function opsOf(t: Tick): number {
  return t.ops.batch + t.ops.single + t.ops.none;
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
