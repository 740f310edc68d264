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
    }
  | {
      readonly granted: false;
      readonly remaining: 0;
      /** How long until the bucket grants again (a cooldown included). */
      readonly retryAfterMs: number;
    };

export interface Limiter {
  /** Takes one token from `key` if one is there now. Never waits. */
  acquire(key: string, limit: BucketLimit): Promise<Decision>;
  /**
   * The call granted on `key` was just answered. The upstream counts arrivals, and an arrival is only
   * known to be before its answer, so the next grant is spaced one interval from now at the earliest.
   */
  settle(key: string, limit: BucketLimit): Promise<void>;
  /** The upstream answered 429: no grant on `key`, for any replica, for `ms`; then one token. */
  pause(key: string, limit: BucketLimit, ms: number): Promise<void>;
  /** Read-only view for the status page and metrics. */
  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }>;
  close(): Promise<void>;
}

/** The bucket key shared by every replica: one batch and one rest bucket per (upstream, app). */
export function bucketKey(upstream: string, appId: string, bucket: 'batch' | 'rest'): string {
  return `${upstream}|${appId}|${bucket}`;
}
