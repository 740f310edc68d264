// Exact GCRA (generic cell rate algorithm) on arrival times, the way a strict upstream counts calls.

export interface BucketLimit {
  ratePerSec: number;
  burst: number;
}

/**
 * One GCRA per bucket, keyed by appId. No slack on purpose: the proxy under test must pace its
 * arrivals, so a call that arrives one millisecond early is rejected. Only float noise (1 ns) is
 * forgiven, so that `interval * n` computed two ways does not flip a decision.
 */
export class Gcra {
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  /** Theoretical arrival time per key, in performance.now() milliseconds. */
  private readonly tat = new Map<string, number>();

  constructor(limit: BucketLimit) {
    if (!(limit.ratePerSec > 0) || !Number.isFinite(limit.ratePerSec)) {
      throw new TypeError(`ratePerSec must be a positive number, got ${limit.ratePerSec}`);
    }
    if (!Number.isInteger(limit.burst) || limit.burst < 1) {
      throw new TypeError(`burst must be an integer >= 1, got ${limit.burst}`);
    }
    this.intervalMs = 1000 / limit.ratePerSec;
    this.toleranceMs = this.intervalMs * (limit.burst - 1);
  }

  /** Admits (and counts) a call arriving at `now`: 0 when admitted, else milliseconds to wait. */
  take(key: string, now: number): number {
    const tat = Math.max(this.tat.get(key) ?? now, now);
    const early = tat - now - this.toleranceMs;
    if (early > 1e-6) return early;
    this.tat.set(key, tat + this.intervalMs);
    return 0;
  }

  clear(): void {
    this.tat.clear();
  }
}
