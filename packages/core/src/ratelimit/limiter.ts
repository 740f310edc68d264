// The rate-limiter seam: one interface, an in-process backend and a Redis backend shared by a fleet.
// Buckets are GCRA (generic cell rate algorithm): one number per bucket, the theoretical arrival time
// (TAT) of the next call, which is exact and needs one atomic read-modify-write per decision.
//
// How the engine uses it (budget.ts): `acquire` before each upstream call (leased: the grant flies
// until settled); `settle` once the call is answered, which says when the bucket grants again; `pause`
// on a 429, before that settle; `charge` for calls the upstream counts that took no grant of their own
// (batched ops under BATCH_OPS_SPEND_REST); `peek` for the status page.
//
// Adaptive pacing (pace.ts): a limit with `pace` has its rate learned per bucket (AIMD, shared by the
// fleet with the bucket). A `pause` is a congestion event; an acquire refused, or one that empties
// a bucket whose token came less than an interval ago, is demand. Every decision then says the rate it
// paced at.

import type { PaceAdjustment, PaceParams } from './pace.js';

export interface BucketLimit {
  /** Requests per second; with `pace`, ignored: the learned rate replaces it. */
  readonly ratePerSec: number;
  readonly burst: number;
  /** Learn the rate (adaptive pacing) within these bounds. */
  readonly pace?: PaceParams | undefined;
}

export type Decision =
  | {
      readonly granted: true;
      /** Whole tokens left after this grant. */
      readonly remaining: number;
      /**
       * How far ahead of the bucket's schedule this grant was, in ms: a call answered sooner than this
       * after its grant changes nothing when settled.
       */
      readonly settleAfterMs: number;
      /** What `settle` needs to account for this call once it is answered. */
      readonly grant: Grant;
      /** With a paced limit: the rate this bucket paced at (this replica's share in a fallback). */
      readonly ratePerSec?: number;
    }
  | {
      readonly granted: false;
      readonly remaining: 0;
      /** How long until the bucket grants again (a cooldown and a hold included). */
      readonly retryAfterMs: number;
      /** With a paced limit: the rate this bucket paced at (this replica's share in a fallback). */
      readonly ratePerSec?: number;
    };

/**
 * A grant asked for with `leaseMs` flies until settled. One that empties its bucket holds the bucket
 * closed until every flying call is answered (or `leaseMs` passes, if replicas die): at the edge of
 * the limit, a call that leaves late followed by one that leaves promptly would arrive closer than
 * one interval and earn a 429. Opaque to callers: hand it back to `settle`.
 */
export interface Grant {
  /** The grant counts as flying in its bucket until settled. */
  readonly leased: boolean;
}

/** What a settle left behind. */
export interface Settled {
  /** How long until the bucket grants again (0: now), a pause and a hold included. */
  readonly reopenInMs: number;
}

/**
 * What a replica tells the limiter about its queue, so a shared backend can serve replicas in their
 * ops' arrival order (whose turn a reopened bucket is). Ignored by a backend with one replica.
 */
export interface Waiting {
  /** How long this replica's oldest op still waiting has waited, in ms; undefined = nothing waits. */
  readonly waitedMs: number | undefined;
}

/** What a paced bucket's acquire or pause left: its learned rate (fleet-wide), and whether it moved. */
export interface PaceReport {
  readonly key: string;
  readonly ratePerSec: number;
  /** Set when this very call changed the rate (counted once, by the replica that made the call). */
  readonly adjusted: PaceAdjustment | undefined;
}

/**
 * A scope's pause or learned pace, told to the other replicas (`share`, `onShared`; SPEC §8d: a
 * throttle pauses what was throttled, fleet-wide). The scope is the group of `appId` whose credential
 * has the digest `group` — never the credential, a bearer token. Durations are relative: replicas'
 * clocks differ.
 */
export interface ScopeNotice {
  readonly appId: string;
  /** 32 hex digits of the credential's sha256 (domains.ts `groupDigest`). */
  readonly group: string;
  /** The scope sends nothing for this long from now, in ms. */
  readonly pauseMs?: number;
  /** The scope's calls leave at least this far apart, in ms. */
  readonly paceMs?: number;
}

export interface Limiter {
  /**
   * Takes one token from `key` if one is there now and it is this replica's turn. Never waits. With
   * `leaseMs`, the grant flies until `settle`, and one that leaves the bucket empty keeps it closed
   * until every flying grant is settled (at most `leaseMs` longer).
   */
  acquire(key: string, limit: BucketLimit, leaseMs?: number, waiting?: Waiting): Promise<Decision>;
  /**
   * The call granted on `key` (as `grant`) was just answered. The upstream counts arrivals, and an
   * arrival is only known to be before its answer: the next grant is spaced one interval from now
   * (SPEC §7), and the grant's lease, if any, is released. Without `grant`: the same, no lease.
   * Resolves with when the bucket grants again, so the caller comes back exactly then.
   */
  settle(key: string, limit: BucketLimit, grant?: Grant, waiting?: Waiting): Promise<Settled>;
  /** The upstream answered 429: no grant on `key`, for any replica, for `ms`; then one token. */
  pause(key: string, limit: BucketLimit, ms: number): Promise<void>;
  /** `count` calls the upstream counts on `key` left without a grant: take their tokens, into debt. */
  charge(key: string, limit: BucketLimit, count: number): Promise<void>;
  /**
   * Tells `listener` when a bucket opens again for this replica after another replica's settle:
   * `inMs` from now (later when it is another replica's turn first). A backend with one replica has
   * nobody else to hear from and does not implement it.
   */
  onReopen?(listener: (key: string, inMs: number) => void): void;
  /**
   * Tells the other replicas of a scope's pause or pace. Never waits, never throws: a notice lost
   * (Redis down, a subscriber reconnecting) costs each other replica its own first 429. A backend with
   * one replica has nobody to tell and does not implement it.
   */
  share?(notice: ScopeNotice): void;
  /** Tells `listener` the notices other replicas share (never this replica's own). */
  onShared?(listener: (notice: ScopeNotice) => void): void;
  /** Tells `listener` the learned rate after every paced acquire and pause (metrics, status page). */
  onPace?(listener: (report: PaceReport) => void): void;
  /** Read-only view for the status page and metrics. */
  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }>;
  close(): Promise<void>;
}

/** The bucket key shared by every replica: one batch and one rest bucket per (upstream, app). */
export function bucketKey(upstream: string, appId: string, bucket: 'batch' | 'rest'): string {
  return `${upstream}|${appId}|${bucket}`;
}
