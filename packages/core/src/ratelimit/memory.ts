// The in-process limiter: used when REDIS_URL is unset, and as the fallback while Redis is down.

import {
  type BucketState,
  FULL,
  gcraAcquire,
  gcraCharge,
  gcraPause,
  gcraPeek,
  gcraReopenIn,
  gcraSettle,
  isFull,
} from './gcra.js';
import type { BucketLimit, Decision, Grant, Limiter, Settled } from './limiter.js';

export interface MemoryLimiterOptions {
  now?: () => number;
  /** Scale every limit by this share (0 < share ≤ 1), e.g. a replica's share while Redis is down. */
  share?: number;
}

/** Writes between two sweeps for buckets that are full again (amortised: each sweep is O(buckets)). */
const SWEEP_EVERY = 1024;

export class MemoryLimiter implements Limiter {
  readonly #buckets = new Map<string, BucketState>();
  readonly #now: () => number;
  readonly #share: number;
  #writes = 0;

  constructor(options: MemoryLimiterOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#share = options.share ?? 1;
  }

  /** Buckets held in memory: a full bucket is forgotten (it equals a fresh one), so this stays bounded. */
  get size(): number {
    return this.#buckets.size;
  }

  acquire(key: string, limit: BucketLimit, leaseMs = 0): Promise<Decision> {
    const now = this.#now();
    const { decision, state } = gcraAcquire(this.#bucket(key), now, this.#scaled(limit), leaseMs);
    this.#store(key, state, now);
    return Promise.resolve(decision);
  }

  settle(key: string, limit: BucketLimit, grant?: Grant): Promise<Settled> {
    const now = this.#now();
    const scaled = this.#scaled(limit);
    const state = gcraSettle(this.#bucket(key), now, scaled, grant);
    this.#store(key, state, now);
    return Promise.resolve({ reopenInMs: gcraReopenIn(state, now, scaled) });
  }

  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    const now = this.#now();
    this.#store(key, gcraPause(this.#bucket(key), now, this.#scaled(limit), ms), now);
    return Promise.resolve();
  }

  charge(key: string, limit: BucketLimit, count: number): Promise<void> {
    const now = this.#now();
    this.#store(key, gcraCharge(this.#bucket(key), now, this.#scaled(limit), count), now);
    return Promise.resolve();
  }

  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    return Promise.resolve(gcraPeek(this.#bucket(key), this.#now(), this.#scaled(limit)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #scaled(limit: BucketLimit): BucketLimit {
    if (this.#share === 1) return limit;
    return {
      ratePerSec: limit.ratePerSec * this.#share,
      burst: Math.max(1, Math.floor(limit.burst * this.#share)),
    };
  }

  #bucket(key: string): BucketState {
    return this.#buckets.get(key) ?? FULL;
  }

  /** Stores a bucket's state; every SWEEP_EVERY writes, forgets the buckets that are full again. */
  #store(key: string, state: BucketState, now: number): void {
    this.#buckets.set(key, state);
    if (++this.#writes < SWEEP_EVERY) return;
    this.#writes = 0;
    for (const [k, s] of this.#buckets) if (isFull(s, now)) this.#buckets.delete(k);
  }
}
