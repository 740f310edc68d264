// The shapes of the status page's inputs and of GET /status.json. Fields are added, never renamed:
// dashboards and scripts read status.json.

import type { BucketLimit, Lane } from '@batch-proxy/core';
import type { CallerTotals } from '../metrics/metrics.js';
import type { CallerView } from './caller-view.js';
import type { BurstForecast } from './forecast.js';

export type RedisMode = 'shared' | 'fallback' | 'none';
export type BucketName = 'batch' | 'rest';
/** `none`: answered without an upstream call (shed, expired, caller gone). */
export type LaneLabel = Lane | 'none';

export interface AppSnapshot {
  readonly appId: string;
  readonly queued: number;
  readonly inflight: number;
  /** The worst of the app's group breakers (SPEC §8c, §8d: one per credential); absent = closed. */
  readonly circuit?: 'closed' | 'open' | 'half-open';
  /** Groups (app + credential) whose breaker is open or half-open; absent = 0. */
  readonly openGroups?: number;
  /** Several groups open together: every call of the app is refused; absent = false. */
  readonly appWide?: boolean;
  /** Groups paused by a 429 of their own (SPEC §8d); absent = 0. */
  readonly pausedGroups?: number;
}

/** One group of an app on the status page (SPEC §8d), named by a 12-hex digest of its credential. */
export interface GroupStatus {
  readonly group: string;
  readonly queued: number;
  readonly circuit: 'closed' | 'open' | 'half-open';
  /** How long it sends nothing more: its pause, or its own pace since its last call. */
  readonly pausedMs: number;
  /** Its own pace after a 429 of its own, in ms between calls (0: none). */
  readonly paceMs: number;
}

export interface StatusOptions {
  /** Per-app queue depths, e.g. `() => scheduler.snapshot()`. */
  readonly snapshot: () => readonly AppSnapshot[];
  /** An app's busiest groups and the others summed, e.g. `(appId) => scheduler.groups(appId)`. */
  readonly groups?: (appId: string) => {
    readonly busiest: readonly GroupStatus[];
    readonly other: { readonly groups: number; readonly queued: number };
  };
  /** Read-only look at one bucket, e.g. `limiter.peek(bucketKey(origin, appId, bucket), limit)`. */
  readonly peek: (
    appId: string,
    bucket: BucketName,
    limit: BucketLimit,
  ) => Promise<{ tokens: number; cooldownMs: number }>;
  readonly redisMode: () => RedisMode;
  /**
   * The caller series as counted so far, e.g. `() => metrics.callers()`: read once a second and
   * per build, never per call. Without it the caller figures are null.
   */
  readonly callers?: () => Promise<CallerTotals>;
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
  /** PACING=adaptive: the learned rates (e.g. the `PaceBoard`) and the operator's bound. */
  readonly pacing?:
    | {
        readonly board: { recent(n: number): readonly PacedBucketReading[] };
        readonly maxRatePerSec: number;
      }
    | undefined;
}

/** One paced bucket as the board heard it (`PaceBoard.recent`). */
export interface PacedBucketReading {
  readonly key: string;
  readonly ratePerSec: number;
  readonly sinceDecreaseMs: number | undefined;
}

/** One paced bucket on the status page (docs/graph-dialect.md §3). */
export interface PacedBucketStatus {
  /** The bucket key hashed (sha256, 12 hex): tells buckets apart without naming the app. */
  readonly key: string;
  /** The learned rate as this replica last heard it, requests/s. */
  readonly ratePerSec: number;
  /** How long ago this replica saw its last decrease; null: none since it heard of the bucket. */
  readonly lastDecreaseAgoMs: number | null;
}

export interface BucketStatus {
  readonly ratePerSec: number;
  readonly burst: number;
  /** Whole tokens left; null when the limiter did not answer in time. */
  readonly tokens: number | null;
  /** Time until the bucket grants again (0 while it has tokens); null when unknown. */
  readonly cooldownMs: number | null;
  /** When the burst runs out at the drain rate seen over the last half minute (forecast.ts). */
  readonly forecast: BurstForecast;
}

export interface AppStatus {
  readonly appId: string;
  readonly queued: number;
  readonly inflight: number;
  readonly batch: BucketStatus;
  readonly rest: BucketStatus | null;
  /**
   * The worst of its groups' breakers (one per credential). `open`: the upstream kept failing for
   * that group, whose calls are answered 503 at once until a probe succeeds; the app's other groups
   * go on unless `appWide`.
   */
  readonly circuit: 'closed' | 'open' | 'half-open';
  /** Groups whose breaker is open or half-open. */
  readonly openGroups: number;
  /** Several groups open together (SPEC §8d): every call of the app is answered 503 at once. */
  readonly appWide: boolean;
  /** Groups paused by a 429 of their own. */
  readonly pausedGroups: number;
  /**
   * Its busiest groups (by queued ops, then pause; at most 5) with their breaker, pause and pace,
   * and the others summed (`_other`).
   */
  readonly groups: readonly GroupStatus[];
  readonly otherGroups: { readonly groups: number; readonly queued: number };
}

/** Calls the proxy refused itself, by code: these are sheds, not upstream 429s. */
export interface ShedCounts {
  /** 429 PROXY_QUEUE_FULL */
  readonly queueFull: number;
  /** 503 PROXY_DEADLINE_EXCEEDED */
  readonly deadline: number;
  /** 503 PROXY_CIRCUIT_OPEN */
  readonly circuitOpen: number;
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
    /** Ops the engine answered (batched calls only; see `callsPerSec` for every caller). */
    readonly opsPerSec: number;
    /** Caller requests of every kind answered; null without the caller series. */
    readonly callsPerSec: number | null;
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
    /** Ops the engine answered, one per waiter (collapsed reads count each caller). */
    readonly ops: number;
    readonly opsByLane: Record<LaneLabel, number>;
    readonly batches: number;
    readonly batchOps: number;
    readonly singles: number;
    readonly upstream429: number;
    readonly shed: ShedCounts;
    readonly collapsed: number;
    readonly requeued: number;
    readonly limiterDenials: Record<BucketName, number>;
    /** Every caller request by kind and own status, with latency; null without the caller series. */
    readonly callers: CallerView | null;
  };
  readonly lastMinute: {
    readonly opsByLane: Record<LaneLabel, number>;
    /** Upstream HTTP calls by status (`error`: no answer), split by lane, status ascending. */
    readonly upstreamStatus: ReadonlyArray<{ status: string; batch: number; single: number }>;
    readonly shed: ShedCounts;
    /** As `totals.callers`, over the last minute (p50/p99 here are the page's latency figures). */
    readonly callers: CallerView | null;
  };
  readonly apps: readonly AppStatus[];
  /** PACING=adaptive: the bound and the 20 paced buckets heard from last, newest first; else null. */
  readonly pacing: { readonly maxRatePerSec: number; readonly buckets: readonly PacedBucketStatus[] } | null;
  /** Apps known to the engine; `apps` lists at most `maxApps` of them. */
  readonly appsTotal: number;
  /** One point per sample, oldest first. */
  readonly history: {
    readonly intervalMs: number;
    /** Points kept: the charts span `capacity × intervalMs`. */
    readonly capacity: number;
    readonly t: number[];
    readonly opsPerSec: number[];
    readonly callsPerSec: Array<number | null>;
    readonly batchesPerSec: number[];
    readonly fill: Array<number | null>;
    readonly queued: number[];
    readonly upstream429PerSec: number[];
    readonly shedPerSec: number[];
    /** Caller latency quantiles of the calls answered in each sample; null for a second without. */
    readonly p50Ms: Array<number | null>;
    readonly p99Ms: Array<number | null>;
  };
}
