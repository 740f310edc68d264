// The in-process limiter: used when REDIS_URL is unset, and as the fallback while Redis is down.

import { gcraAcquire, gcraPause, gcraPeek, gcraSettle } from './gcra.js';
import type { BucketLimit, Decision, Grant, Limiter } from './limiter.js';

export interface MemoryLimiterOptions {
  now?: () => number;
  /** Scale every limit by this share (0 < share ≤ 1), e.g. a replica's share while Redis is down. */
  share?: number;
}

export class MemoryLimiter implements Limiter {
  readonly #tats = new Map<string, number>();
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

  #tat(key: string): number {
    return this.#tats.get(key) ?? Number.NEGATIVE_INFINITY;
  }

  acquire(key: string, limit: BucketLimit, leaseMs = 0): Promise<Decision> {
    const { decision, tat } = gcraAcquire(this.#tat(key), this.#now(), this.#scaled(limit), leaseMs);
    this.#tats.set(key, tat);
    return Promise.resolve(decision);
  }

  settle(key: string, limit: BucketLimit, grant?: Grant, lagMs?: number): Promise<void> {
    this.#tats.set(key, gcraSettle(this.#tat(key), this.#now(), this.#scaled(limit), grant, lagMs));
    return Promise.resolve();
  }

  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    this.#tats.set(key, gcraPause(this.#tat(key), this.#now(), this.#scaled(limit), ms));
    return Promise.resolve();
  }

  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    return Promise.resolve(gcraPeek(this.#tat(key), this.#now(), this.#scaled(limit)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
