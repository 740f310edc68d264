// The in-process limiter: used when REDIS_URL is unset, and as the fallback while Redis is down.

import { type BucketState, FULL, gcraAcquire, gcraPause, gcraPeek, gcraSettle } from './gcra.js';
import type { BucketLimit, Decision, Grant, Limiter } from './limiter.js';

export interface MemoryLimiterOptions {
  now?: () => number;
  /** Scale every limit by this share (0 < share ≤ 1), e.g. a replica's share while Redis is down. */
  share?: number;
}

export class MemoryLimiter implements Limiter {
  readonly #buckets = new Map<string, BucketState>();
  readonly #now: () => number;
  readonly #share: number;

  constructor(options: MemoryLimiterOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#share = options.share ?? 1;
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

  acquire(key: string, limit: BucketLimit, leaseMs = 0): Promise<Decision> {
    const { decision, state } = gcraAcquire(this.#bucket(key), this.#now(), this.#scaled(limit), leaseMs);
    this.#buckets.set(key, state);
    return Promise.resolve(decision);
  }

  settle(key: string, limit: BucketLimit, grant?: Grant): Promise<void> {
    this.#buckets.set(key, gcraSettle(this.#bucket(key), this.#now(), this.#scaled(limit), grant));
    return Promise.resolve();
  }

  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    this.#buckets.set(key, gcraPause(this.#bucket(key), this.#now(), this.#scaled(limit), ms));
    return Promise.resolve();
  }

  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    return Promise.resolve(gcraPeek(this.#bucket(key), this.#now(), this.#scaled(limit)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
