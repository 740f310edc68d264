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
      /** Set when the grant emptied the bucket and a lease was asked for: pass it to `settle`. */
      readonly lease?: Lease;
    }
  | {
      readonly granted: false;
      readonly remaining: 0;
      /** How long until the bucket grants again (a cooldown included). */
      readonly retryAfterMs: number;
    };

/**
 * A grant that emptied its bucket holds the bucket closed until its call is answered (or `leaseMs`
 * passes, if the replica dies): at the edge of the limit, a call that leaves late followed by one
 * that leaves promptly would arrive closer than one interval and earn a 429. Opaque to callers.
 */
export interface Lease {
  /** The TAT the lease stored; settle releases only if it is still there. */
  readonly leasedTat: string;
  /** The TAT the grant would have stored without the lease. */
  readonly baseTat: string;
}

export interface Limiter {
  /**
   * Takes one token from `key` if one is there now. Never waits. With `leaseMs`, a grant that leaves
   * the bucket empty keeps it closed until `settle` (at most `leaseMs` longer).
   */
  acquire(key: string, limit: BucketLimit, leaseMs?: number): Promise<Decision>;
  /**
   * The call granted on `key` was just answered. The upstream counts arrivals, and an arrival is only
   * known to be before its answer, so the next grant is spaced one interval from now at the earliest
   * (SPEC §7), and the grant's lease, if any, is released.
   */
  settle(key: string, limit: BucketLimit, lease?: Lease): Promise<void>;
  /** The upstream answered 429: no grant on `key`, for any replica, for `ms`; then one token. */
  pause(key: string, limit: BucketLimit, ms: number): Promise<void>;
  /**
   * Tells `listener` when a bucket opens again after a settle (any replica's): `inMs` from now. Lets a
   * waiting replica come back exactly then instead of polling. Optional: a backend without it is polled.
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
