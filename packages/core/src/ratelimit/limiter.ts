// The rate-limiter seam: one interface, an in-process backend and a Redis backend shared by a fleet.
// Buckets are GCRA (generic cell rate algorithm): one number per bucket, the theoretical arrival time
// (TAT) of the next call, which is exact and needs one atomic read-modify-write per decision.

export interface BucketLimit {
  readonly ratePerSec: number;
  readonly burst: number;
}

export type Decision =
  | {
      readonly granted: true;
      /** Whole tokens left after this grant. */
      readonly remaining: number;
      /**
       * If the granted call is answered later than this many ms after the grant, call `settle` so the
       * next grant is spaced from the answer (SPEC §7). Under load this is large and settle is skipped.
       */
      readonly settleAfterMs: number;
      /** What `settle` needs to account for this call once it is answered. */
      readonly grant: Grant;
      /** Set when the grant emptied the bucket and a lease was asked for (the same as `grant`). */
      readonly lease?: Lease;
    }
  | {
      readonly granted: false;
      readonly remaining: 0;
      /** How long until the bucket grants again (a cooldown included). */
      readonly retryAfterMs: number;
    };

/**
 * A grant asked for with `leaseMs` flies until settled. One that empties its bucket holds the bucket
 * closed until every flying call is answered (or `leaseMs` passes, if replicas die): at the edge of
 * the limit, a call that leaves late followed by one that leaves promptly would arrive closer than
 * one interval and earn a 429. Opaque to callers.
 */
export interface Grant {
  /** The TAT the grant stored. */
  readonly baseTat: string;
  /** Set when the grant was leased (it flies until settled): the hold it set, or `flying`. */
  readonly leasedTat?: string;
}

/** A grant that emptied its bucket and holds it closed: `leasedTat` is the hold's end. */
export interface Lease extends Grant {
  readonly leasedTat: string;
}

/**
 * What a replica tells the limiter about its queue, so a shared backend can serve replicas in their
 * ops' arrival order (whose turn a reopened bucket is). Ignored by a backend with one replica.
 */
export interface Waiting {
  /** How long this replica's oldest op still waiting has waited, in ms; undefined = nothing waits. */
  readonly waitedMs: number | undefined;
}

export interface Limiter {
  /**
   * Takes one token from `key` if one is there now and it is this replica's turn. Never waits. With
   * `leaseMs`, a grant that leaves the bucket empty keeps it closed until `settle` (at most `leaseMs`
   * longer).
   */
  acquire(key: string, limit: BucketLimit, leaseMs?: number, waiting?: Waiting): Promise<Decision>;
  /**
   * The call granted on `key` (as `grant`) was just answered. The upstream counts arrivals, and an
   * arrival is only known to be before its answer: the next grant is spaced one interval from now
   * (SPEC §7), and the grant's lease, if any, is released. Without `grant`: the same, no lease.
   */
  settle(key: string, limit: BucketLimit, grant?: Grant, waiting?: Waiting): Promise<void>;
  /** The upstream answered 429: no grant on `key`, for any replica, for `ms`; then one token. */
  pause(key: string, limit: BucketLimit, ms: number): Promise<void>;
  /**
   * Tells `listener` when a bucket opens again for this replica after a settle (any replica's): `inMs`
   * from now (later when it is another replica's turn first). Lets a waiting replica come back exactly
   * then instead of polling. Optional: a backend without it is polled.
   */
  onReopen?(listener: (key: string, inMs: number) => void): void;
  /** Read-only view for the status page and metrics. */
  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }>;
  close(): Promise<void>;
}

/** The bucket key shared by every replica: one batch and one rest bucket per (upstream, app). */
export function bucketKey(upstream: string, appId: string, bucket: 'batch' | 'rest'): string {
  return `${upstream}|${appId}|${bucket}`;
}
