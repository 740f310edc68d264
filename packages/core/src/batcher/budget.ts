// One upstream budget of one app (its batch calls, or its single calls) as this replica sees it: the
// limiter's bucket, when it is worth asking again, and what it last said. One object per bucket, so
// the engine never switches on which bucket it is.

import { intervalMs } from '../ratelimit/gcra.js';
import type { HeaderPace } from '../ratelimit/header-pace.js';
import type { BucketLimit, Decision, Limiter, Waiting } from '../ratelimit/limiter.js';
import type { Clock } from './clock.js';

export type BudgetName = 'batch' | 'rest';

export interface BudgetDeps {
  readonly limiter: Limiter;
  readonly clock: Clock;
  /** How long a grant that empties the bucket may keep it closed waiting for its answer. */
  readonly leaseMs: number;
  /** Every limiter decision (metrics). */
  readonly observe?: (granted: boolean, waitMs: number) => void;
  /** The bucket may grant again sooner than this replica thought: look now. */
  readonly wake: () => void;
}

/** Denied replicas look again after at most one interval, and no sooner than this. */
export const MIN_POLL_MS = 20;

export class Budget {
  /** One token's interval: the limit's, or the rate the limiter last paced at (adaptive pacing). */
  #interval: number;
  /** Until when asking is pointless (a denial, an emptied bucket, a pause). */
  #blockedUntil = 0;
  /** Until when the upstream said 429: nothing this replica hears may open the bucket earlier. */
  #pausedUntil = 0;
  /** Until when the bucket surely grants nothing: a denial longer than any lease is the TAT's. */
  #surelyClosedUntil = 0;
  /** Last word on the tokens left, for the token economy. */
  #tokens: { remaining: number; at: number };
  /**
   * The upstream's own figures slowed this bucket (RATE_HEADERS): the limit spent at, until the
   * window they were of resets. Every replica reads the same upstream counter and passes the rate it
   * read to the shared bucket, so the fleet spends the figures once, not once per replica.
   */
  #heard: { limit: BucketLimit; until: number } | undefined;
  /** The tightest reset instant the upstream's figures told (header-pace.ts `tightenReset`). */
  resetAt: number | undefined;

  constructor(
    readonly name: BudgetName,
    readonly key: string,
    readonly limit: BucketLimit,
    private readonly deps: BudgetDeps,
  ) {
    this.#interval = intervalMs(limit);
    this.#tokens = { remaining: limit.burst, at: deps.clock.now() };
  }

  get interval(): number {
    return this.#interval;
  }

  get blockedUntil(): number {
    return this.#blockedUntil;
  }

  isOpen(now: number): boolean {
    return now >= this.#blockedUntil;
  }

  /**
   * When this budget is worth asking again, as of `now` (undefined: it is open now): when its block
   * ends — or, `denied` by a look that found its wait already over (a turn denial of 0 ms, a wait
   * shorter than the look), one poll on.
   */
  askAgainAt(now: number, denied: boolean): number | undefined {
    if (this.#blockedUntil > now) return this.#blockedUntil;
    if (denied) return now + this.#poll(Number.POSITIVE_INFINITY);
    return undefined;
  }

  /** A time before which this bucket surely grants nothing (a pause; a debt): ops due earlier cannot leave. */
  get closedUntil(): number {
    return Math.max(this.#pausedUntil, this.#surelyClosedUntil);
  }

  /** Indistinguishable from a fresh budget at `now`: open, not paused, full. */
  isFresh(now: number): boolean {
    return (
      this.#blockedUntil <= now &&
      this.closedUntil <= now &&
      this.tokensAt(now) >= this.limit.burst &&
      this.spending(now) === this.limit
    );
  }

  /** The limit this bucket spends at now: the operator's, or one the upstream's figures slowed. */
  spending(now: number): BucketLimit {
    if (this.#heard === undefined) return this.limit;
    if (now < this.#heard.until) return this.#heard.limit;
    this.#heard = undefined;
    this.#interval = intervalMs(this.limit);
    return this.limit;
  }

  /**
   * An answer's rate headers asked for `pace` (header-pace.ts; undefined: they said nothing, and the
   * last figures hold until their reset). Slows the bucket for the window they were of; nothing
   * left pauses it, for the fleet. Call before the settle, as a pause.
   */
  async heard(pace: HeaderPace | undefined): Promise<void> {
    if (pace === undefined) return;
    const now = this.deps.clock.now();
    const ratePerSec = Math.min(this.limit.ratePerSec, pace.ratePerSec);
    const burst = Math.max(1, Math.min(this.limit.burst, pace.maxBurst ?? this.limit.burst));
    this.#heard = { limit: { ...this.limit, ratePerSec, burst }, until: now + pace.forMs };
    this.#interval = 1000 / ratePerSec;
    if (pace.pauseMs !== undefined) await this.pause(pace.pauseMs);
  }

  /** Tokens left by the last word and the refill since, at most the burst. */
  tokensAt(now: number): number {
    return Math.min(this.limit.burst, this.#tokens.remaining + (now - this.#tokens.at) / this.interval);
  }

  /**
   * One token, leased (it flies until `settle`). `waiting` is this replica's turn in a fleet. A
   * limiter that fails outright (the fallback limiter should prevent it) counts as a short denial.
   */
  async acquire(waiting: Waiting): Promise<Decision> {
    let decision: Decision;
    try {
      decision = await this.deps.limiter.acquire(
        this.key,
        this.spending(this.deps.clock.now()),
        this.deps.leaseMs,
        waiting,
      );
    } catch {
      decision = { granted: false, remaining: 0, retryAfterMs: this.interval };
    }
    const now = this.deps.clock.now();
    // A paced bucket's rate is learned (the limiter lowers it on a pause, raises it on demand).
    if (decision.ratePerSec !== undefined) this.#interval = 1000 / decision.ratePerSec;
    this.deps.observe?.(decision.granted, decision.granted ? 0 : decision.retryAfterMs);
    if (!decision.granted) {
      this.#tokens = { remaining: 0, at: now };
      // A hold lasts at most a lease: a longer wait is the bucket's own schedule, which only grows.
      if (decision.retryAfterMs > this.deps.leaseMs) this.#surelyClosedUntil = now + decision.retryAfterMs;
      // The wait may include another call's lease, released as soon as that call is answered.
      this.#block(now + this.#poll(decision.retryAfterMs));
    } else {
      this.#surelyClosedUntil = 0;
      this.#tokens = { remaining: decision.remaining, at: now };
      // An emptied bucket grants again one interval after the grants queued before it, at the
      // earliest (its lease may keep it closed until this call's settle).
      const tolerance = (this.spending(now).burst - 1) * this.interval;
      if (decision.remaining === 0) {
        this.#block(now + Math.max(0, decision.settleAfterMs + this.interval - tolerance));
      }
    }
    return decision;
  }

  /**
   * The granted call was answered (SPEC §7: the next grant is spaced from the answer): release its
   * lease, say how long this replica's oldest op has waited (its turn), and come back when the
   * limiter says the bucket reopens — at the latest one poll on (a lease elsewhere may lift sooner).
   * Never rejects: a lost settle leaves a lease to expire on its own (leaseMs).
   */
  async settle(decision: Decision, waiting: Waiting): Promise<void> {
    if (!decision.granted) return;
    let reopenInMs = this.interval;
    try {
      ({ reopenInMs } = await this.deps.limiter.settle(
        this.key,
        this.spending(this.deps.clock.now()),
        decision.grant,
        waiting,
      ));
    } catch {
      // Best effort, off the callers' path.
    }
    this.#reopen(this.deps.clock.now() + this.#poll(reopenInMs));
  }

  /** The upstream answered 429: closed for `ms` here, and for the fleet. Call before the settle. */
  async pause(ms: number): Promise<void> {
    const until = this.deps.clock.now() + ms;
    this.#pausedUntil = Math.max(this.#pausedUntil, until);
    this.#block(until);
    try {
      await this.deps.limiter.pause(this.key, this.spending(this.deps.clock.now()), ms);
    } catch {
      // The local pause still holds this replica back (a failed pause was likely never recorded:
      // waiting out the failure's own latency too would only shed more).
      return;
    }
    // The limiter read its clock after this one did (µs later in process, a round trip on Redis):
    // its pause ends that much later, and a look at the end of this one would find it still closed.
    this.#pausedUntil = Math.max(this.#pausedUntil, this.deps.clock.now() + ms);
    this.#blockedUntil = Math.max(this.#blockedUntil, this.#pausedUntil);
  }

  /** Calls the upstream counts on this budget that took no grant (batched ops, BATCH_OPS_SPEND_REST). */
  async charge(count: number): Promise<void> {
    try {
      await this.deps.limiter.charge(this.key, this.spending(this.deps.clock.now()), count);
    } catch {
      // Best effort: the fallback limiter serves it in memory while Redis is down.
    }
    // The debt shows on the next acquire as a denial.
  }

  /** A reopen notice (another replica settled): the freshest word, it replaces a poll time. */
  reopened(inMs: number): void {
    this.#reopen(this.deps.clock.now() + inMs);
  }

  #poll(waitMs: number): number {
    return Math.min(waitMs, Math.max(MIN_POLL_MS, this.interval));
  }

  /** Closed until at least `at`. */
  #block(at: number): void {
    this.#blockedUntil = Math.max(this.#pausedUntil, at);
  }

  /** Open again at `at`, not before a pause ends; the pump looks again (and sets its timer). */
  #reopen(at: number): void {
    this.#blockedUntil = Math.max(this.#pausedUntil, at);
    this.deps.wake();
  }
}
