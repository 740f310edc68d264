// Keeps rate limiting up while the shared (Redis) limiter is unreachable: an in-process limiter at a
// share of each limit serves until a background probe finds the primary answering again (SPEC §7).

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
import { MemoryLimiter } from './memory.js';

export type LimiterMode = 'shared' | 'fallback';

export type ModeListener = (mode: LimiterMode, cause?: unknown) => void;

export interface FallbackLimiterOptions {
  /** The shared limiter. `close()` closes it. */
  primary: Limiter;
  /**
   * The share of every limit this replica may use on its own while the primary is down (0 < share ≤ 1),
   * e.g. 1 / replicas, so the fleet as a whole stays under the upstream's limit.
   */
  share: number;
  /** Bound on each primary call and probe; past it the call is served in-process. Default 250. */
  timeoutMs?: number;
  /** Pause between probes while in fallback. Default 1000. */
  probeIntervalMs?: number;
  /**
   * Resolves when the primary is reachable again, e.g. `() => redisLimiter.ping()`. Default: a `peek`
   * on the primary, which any backend answers and which changes no bucket.
   */
  probe?: () => Promise<unknown>;
  /** Called on every switch; `cause` is the failure that started an outage. Must not throw. */
  onModeChange?: ModeListener;
  /** Clock of the in-process limiter (tests). */
  now?: () => number;
}

const PROBE_KEY = 'batch-proxy:probe';
const PROBE_LIMIT: BucketLimit = { ratePerSec: 1, burst: 1 };

export class FallbackLimiter implements Limiter {
  readonly #primary: Limiter;
  readonly #memory: MemoryLimiter;
  readonly #timeoutMs: number;
  readonly #probeIntervalMs: number;
  readonly #probe: () => Promise<unknown>;
  readonly #listeners = new Set<ModeListener>();
  #mode: LimiterMode = 'shared';
  #probeTimer: NodeJS.Timeout | undefined;
  /** Grants the in-process limiter made (settled there); the rest came from the primary. */
  readonly #memoryGrants = new WeakSet<Grant>();
  #closed = false;

  constructor(options: FallbackLimiterOptions) {
    if (!(options.share > 0 && options.share <= 1)) {
      throw new TypeError(`FallbackLimiter: share must be in (0, 1], got ${options.share}`);
    }
    this.#primary = options.primary;
    this.#memory = new MemoryLimiter(
      options.now === undefined ? { share: options.share } : { share: options.share, now: options.now },
    );
    this.#timeoutMs = options.timeoutMs ?? 250;
    this.#probeIntervalMs = options.probeIntervalMs ?? 1000;
    this.#probe = options.probe ?? (() => this.#primary.peek(PROBE_KEY, PROBE_LIMIT));
    if (options.onModeChange) this.#listeners.add(options.onModeChange);
  }

  /** `shared` while the primary answers; `fallback` while calls are served in-process. */
  get mode(): LimiterMode {
    return this.#mode;
  }

  /** Registers a listener for mode switches; returns its removal. */
  onModeChange(listener: ModeListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async acquire(key: string, limit: BucketLimit, leaseMs?: number, waiting?: Waiting): Promise<Decision> {
    let issuer: Limiter = this.#memory;
    const decision = await this.#serve((limiter) => {
      issuer = limiter;
      return limiter.acquire(key, limit, leaseMs, waiting);
    });
    if (decision.granted && issuer === this.#memory) this.#memoryGrants.add(decision.grant);
    // An outage carries on pacing from the fleet's last learned rate (at this replica's share).
    if (issuer !== this.#memory && decision.ratePerSec !== undefined) {
      this.#memory.seedPace(key, limit, decision.ratePerSec);
    }
    return decision;
  }

  /**
   * A grant is settled where it was made: a shared bucket counts its calls in flight and holds itself
   * closed until they land, so a settle served in-process instead would leave it held until its
   * lease ends. The shared one is asked even in fallback (off the callers' path, bounded); a settle it
   * misses is lost either way.
   */
  async settle(key: string, limit: BucketLimit, grant?: Grant, waiting?: Waiting): Promise<Settled> {
    if (grant && this.#memoryGrants.has(grant)) {
      this.#memoryGrants.delete(grant);
      return this.#memory.settle(key, limit, grant);
    }
    if (!grant) return this.#serve((limiter) => limiter.settle(key, limit, grant, waiting));
    return this.#bounded(() => this.#primary.settle(key, limit, grant, waiting));
  }

  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    return this.#serve((limiter) => limiter.pause(key, limit, ms));
  }

  charge(key: string, limit: BucketLimit, count: number): Promise<void> {
    return this.#serve((limiter) => limiter.charge(key, limit, count));
  }

  peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    return this.#serve((limiter) => limiter.peek(key, limit));
  }

  /**
   * The primary's reopen notices of other replicas' settles (none arrive while in fallback: this
   * replica's own settles say when its buckets reopen).
   */
  onReopen(listener: (key: string, inMs: number) => void): void {
    this.#primary.onReopen?.(listener);
  }

  /** A scope notice goes to the primary while it answers; in fallback there is no fleet to reach. */
  share(notice: ScopeNotice): void {
    if (this.#mode === 'shared') this.#primary.share?.(notice);
  }

  /** The other replicas' scope notices (none arrive while the primary is down). */
  onShared(listener: (notice: ScopeNotice) => void): void {
    this.#primary.onShared?.(listener);
  }

  /** The learned rates: the fleet's while shared, this replica's own while in fallback. */
  onPace(listener: (report: PaceReport) => void): void {
    this.#primary.onPace?.(listener);
    this.#memory.onPace(listener);
  }

  /** Stops the probe and closes the primary. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    await this.#memory.close();
    await this.#primary.close();
  }

  async #serve<T>(call: (limiter: Limiter) => Promise<T>): Promise<T> {
    // While in fallback the primary is left alone (only the probe touches it): every call would
    // otherwise wait for its own failure or timeout.
    if (this.#mode === 'shared') {
      try {
        return await this.#bounded(() => call(this.#primary));
      } catch (error) {
        this.#enterFallback(error);
      }
    }
    // A call the primary failed (or timed out on) may still have been applied there: serving it again
    // in-process only errs towards fewer grants.
    return call(this.#memory);
  }

  /** Runs `start` with a deadline; the timer is cleared either way and a late rejection is absorbed. */
  #bounded<T>(start: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`rate limiter primary did not answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      const done = () => clearTimeout(timer);
      let pending: Promise<T>;
      try {
        pending = start();
      } catch (error) {
        done();
        reject(error);
        return;
      }
      pending.then(
        (value) => {
          done();
          resolve(value);
        },
        (error: unknown) => {
          done();
          reject(error);
        },
      );
    });
  }

  #enterFallback(cause: unknown): void {
    if (this.#mode === 'fallback' || this.#closed) return;
    this.#setMode('fallback', cause);
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (this.#closed || this.#probeTimer !== undefined) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      void this.#runProbe();
    }, this.#probeIntervalMs);
    // The probe must not keep a process alive that is otherwise done.
    this.#probeTimer.unref();
  }

  /** Never rejects: a failed probe schedules the next one. */
  async #runProbe(): Promise<void> {
    try {
      await this.#bounded(this.#probe);
    } catch {
      this.#scheduleProbe();
      return;
    }
    if (!this.#closed) this.#setMode('shared');
  }

  #setMode(mode: LimiterMode, cause?: unknown): void {
    this.#mode = mode;
    for (const listener of this.#listeners) {
      try {
        listener(mode, cause);
      } catch {
        // A listener's bug must not take rate limiting down with it (nor surface as a rejection of
        // an unrelated acquire).
      }
    }
  }
}
