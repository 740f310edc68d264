// PACING=adaptive without touching the engine's limits: a Limiter in front of another that learns the
// rate (pace.ts) of the buckets it is told to (by bucket name: the batch bucket of every app), and a
// board of the learned rates for metrics and the status page.

import type {
  BucketLimit,
  Decision,
  Grant,
  Limiter,
  PaceReport,
  ScopeNotice,
  Settled,
  Waiting,
} from './limiter.js';
import { PACE_IDLE_MS, type PaceParams } from './pace.js';

export interface PacedLimiterOptions {
  readonly pace: PaceParams;
  /** Bucket names (the last part of `bucketKey`) whose rate is learned, e.g. `batch`. */
  readonly buckets: ReadonlySet<string>;
}

export class PacedLimiter implements Limiter {
  readonly #inner: Limiter;
  readonly #pace: PaceParams;
  readonly #buckets: ReadonlySet<string>;

  constructor(inner: Limiter, options: PacedLimiterOptions) {
    this.#inner = inner;
    this.#pace = options.pace;
    this.#buckets = options.buckets;
  }

  acquire(key: string, limit: BucketLimit, leaseMs?: number, waiting?: Waiting): Promise<Decision> {
    return this.#inner.acquire(key, this.#limit(key, limit), leaseMs, waiting);
  }

  settle(key: string, limit: BucketLimit, grant?: Grant, waiting?: Waiting): Promise<Settled> {
    return this.#inner.settle(key, this.#limit(key, limit), grant, waiting);
  }

  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    return this.#inner.pause(key, this.#limit(key, limit), ms);
  }

  charge(key: string, limit: BucketLimit, count: number): Promise<void> {
    return this.#inner.charge(key, this.#limit(key, limit), count);
  }

  onReopen(listener: (key: string, inMs: number) => void): void {
    this.#inner.onReopen?.(listener);
  }

  onPace(listener: (report: PaceReport) => void): void {
    this.#inner.onPace?.(listener);
  }

  share(notice: ScopeNotice): void {
    this.#inner.share?.(notice);
  }

  onShared(listener: (notice: ScopeNotice) => void): void {
    this.#inner.onShared?.(listener);
  }

  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    return this.#inner.peek(key, this.#limit(key, limit));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  #limit(key: string, limit: BucketLimit): BucketLimit {
    const name = key.slice(key.lastIndexOf('|') + 1);
    return this.#buckets.has(name) ? { ...limit, pace: this.#pace } : limit;
  }
}

export interface PaceStats {
  /** Learned rates over the buckets active in the last 10 minutes (undefined: none). */
  readonly min: number | undefined;
  readonly median: number | undefined;
  readonly max: number | undefined;
  readonly increases: number;
  readonly decreases: number;
}

export interface PaceEntry {
  readonly key: string;
  readonly ratePerSec: number;
  readonly sinceDecreaseMs: number | undefined;
}

/** The most buckets the board remembers (the oldest report goes first). */
const MAX_BUCKETS = 10_000;

/**
 * The last learned rate of each active paced bucket as this replica heard it, and the adjustments
 * this replica's calls made (each adjustment is made, and counted, by exactly one replica).
 */
export class PaceBoard {
  readonly #rates = new Map<string, { rate: number; at: number; decreasedAt: number | undefined }>();
  readonly #now: () => number;
  #increases = 0;
  #decreases = 0;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Hand this to `Limiter.onPace`. */
  readonly record = (report: PaceReport): void => {
    const now = this.#now();
    const decreasedAt = report.adjusted === 'decrease' ? now : this.#rates.get(report.key)?.decreasedAt;
    this.#rates.delete(report.key); // re-inserted last: the map stays in order of the last report
    this.#rates.set(report.key, { rate: report.ratePerSec, at: now, decreasedAt });
    if (this.#rates.size > MAX_BUCKETS) {
      const oldest = this.#rates.keys().next();
      if (!oldest.done) this.#rates.delete(oldest.value);
    }
    if (report.adjusted === 'increase') this.#increases++;
    if (report.adjusted === 'decrease') this.#decreases++;
  };

  /** The learned rate of `key` as last heard, if active. */
  rate(key: string): number | undefined {
    const entry = this.#rates.get(key);
    return entry && this.#now() - entry.at < PACE_IDLE_MS ? entry.rate : undefined;
  }

  /**
   * The `n` active buckets heard from last, newest first: the learned rate and how long ago this
   * replica saw the last decrease (undefined: none since the board heard of the bucket).
   */
  recent(n: number): PaceEntry[] {
    this.#forgetIdle();
    const now = this.#now();
    const out: PaceEntry[] = [];
    for (const [key, entry] of [...this.#rates].reverse()) {
      if (out.length >= n) break;
      const sinceDecreaseMs = entry.decreasedAt === undefined ? undefined : now - entry.decreasedAt;
      out.push({ key, ratePerSec: entry.rate, sinceDecreaseMs });
    }
    return out;
  }

  stats(): PaceStats {
    this.#forgetIdle();
    const rates = [...this.#rates.values()].map((e) => e.rate).sort((a, b) => a - b);
    const mid = rates.length >> 1;
    const median = rates.length % 2 === 1 ? rates[mid] : ((rates[mid - 1] ?? 0) + (rates[mid] ?? 0)) / 2;
    return {
      min: rates[0],
      median: rates.length === 0 ? undefined : median,
      max: rates.at(-1),
      increases: this.#increases,
      decreases: this.#decreases,
    };
  }

  #forgetIdle(): void {
    const now = this.#now();
    for (const [key, entry] of this.#rates) {
      if (now - entry.at < PACE_IDLE_MS) break; // in order of the last report: the rest are newer
      this.#rates.delete(key);
    }
  }
}
