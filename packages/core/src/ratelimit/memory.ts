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
  intervalMs,
  isFull,
} from './gcra.js';
import type { BucketLimit, Decision, Grant, Limiter, PaceReport, Settled } from './limiter.js';
import {
  PACE_IDLE_MS,
  type PaceEvent,
  type PaceState,
  paceApply,
  paceIdle,
  paceRate,
  paceStart,
} from './pace.js';

export interface MemoryLimiterOptions {
  now?: () => number;
  /** Scale every limit by this share (0 < share ≤ 1), e.g. a replica's share while Redis is down. */
  share?: number;
}

/** Writes between two sweeps for buckets that are full again (amortised: each sweep is O(buckets)). */
const SWEEP_EVERY = 1024;

export class MemoryLimiter implements Limiter {
  readonly #buckets = new Map<string, BucketState>();
  /** The learned pace of the paced buckets (pace.ts), forgotten when idle. */
  readonly #paces = new Map<string, PaceState>();
  readonly #paceListeners: Array<(report: PaceReport) => void> = [];
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
    if (limit.pace === undefined) {
      const { decision, state } = gcraAcquire(this.#bucket(key), now, this.#scaled(limit), leaseMs);
      this.#store(key, state, now);
      return Promise.resolve(decision);
    }
    // Paced: a probe interval that is over is judged first, then the bucket decides at the rate.
    const look = this.#pace(key, limit, now, { kind: 'look' });
    const scaled = this.#scaled(look.limit);
    const before = this.#bucket(key);
    const { decision, state } = gcraAcquire(before, now, scaled, leaseMs);
    this.#store(key, state, now);
    // Demand: refused, or a grant that empties a bucket whose token came less than an interval ago
    // (the app keeps up with the rate; a lone call after a quiet spell empties a bucket of burst 1
    // too, but is no demand).
    const prompt = now - before.tat < intervalMs(scaled);
    if (!decision.granted || (decision.remaining === 0 && prompt)) {
      const pace = this.#paces.get(key);
      if (pace) this.#paces.set(key, { ...pace, demandAt: now });
    }
    return Promise.resolve({ ...decision, ratePerSec: scaled.ratePerSec });
  }

  settle(key: string, limit: BucketLimit, grant?: Grant): Promise<Settled> {
    const now = this.#now();
    const scaled = this.#scaled(this.#learned(key, limit));
    const state = gcraSettle(this.#bucket(key), now, scaled, grant);
    this.#store(key, state, now);
    return Promise.resolve({ reopenInMs: gcraReopenIn(state, now, scaled) });
  }

  /** With a paced limit, the 429 is also a congestion event: the rate drops before the pause. */
  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    const now = this.#now();
    const paced =
      limit.pace === undefined
        ? limit
        : this.#pace(key, limit, now, { kind: 'congestion', retryAfterMs: ms }).limit;
    this.#store(key, gcraPause(this.#bucket(key), now, this.#scaled(paced), ms), now);
    return Promise.resolve();
  }

  charge(key: string, limit: BucketLimit, count: number): Promise<void> {
    const now = this.#now();
    this.#store(key, gcraCharge(this.#bucket(key), now, this.#scaled(this.#learned(key, limit)), count), now);
    return Promise.resolve();
  }

  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    return Promise.resolve(gcraPeek(this.#bucket(key), this.#now(), this.#scaled(this.#learned(key, limit))));
  }

  onPace(listener: (report: PaceReport) => void): void {
    this.#paceListeners.push(listener);
  }

  /**
   * The fleet's learned rate of `key`, as last seen from the shared limiter: a fallback carries on
   * from it instead of starting again (the rest of the pace, e.g. a cooldown, stays this one's).
   */
  seedPace(key: string, limit: BucketLimit, ratePerSec: number): void {
    if (limit.pace === undefined) return;
    const now = this.#now();
    const pace = this.#paces.get(key) ?? paceStart(limit.pace, now);
    this.#paces.set(key, { ...pace, rate: ratePerSec });
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

  /** The limit at the bucket's learned rate (unchanged when not paced). */
  #learned(key: string, limit: BucketLimit): BucketLimit {
    if (limit.pace === undefined) return limit;
    return { ratePerSec: paceRate(this.#paces.get(key), limit.pace), burst: limit.burst };
  }

  /** Applies a pace event to a paced bucket, tells the listeners, returns the limit at the new rate. */
  #pace(key: string, limit: BucketLimit, now: number, event: PaceEvent): { limit: BucketLimit } {
    const params = limit.pace;
    if (params === undefined) return { limit };
    const step = paceApply(this.#paces.get(key), now, params, event);
    this.#paces.set(key, step.state);
    const report: PaceReport = { key, ratePerSec: step.state.rate, adjusted: step.adjusted };
    for (const listener of this.#paceListeners) listener(report);
    return { limit: { ratePerSec: step.state.rate, burst: limit.burst } };
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
    for (const [k, p] of this.#paces) if (paceIdle(p, now, PACE_IDLE_MS)) this.#paces.delete(k);
  }
}
