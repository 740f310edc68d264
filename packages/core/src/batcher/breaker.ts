// A circuit breaker per group, app + credential (domains.ts; Envoy's outlier detection is the model): after `failures` upstream calls
// in a row failed without a usable answer (5xx, reset, timeout; not a 4xx, not a 429), the app's calls
// are answered at once 503 with Retry-After instead of queueing to their deadline. After `openMs` the
// breaker lets one call through (half-open): its success closes the breaker, its failure opens it
// again for twice as long (at most `maxOpenMs`).
//
// "In a row" is causal: a failed call counts only if it was sent after the last counted failure came
// back. Calls in flight together fail together on one hiccup (a slow patch, a reset pool), and count
// once; only failures that persist across rounds of calls open the breaker.

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failed calls that open the breaker (0 = never). */
  readonly failures: number;
  /** How long it stays open the first time, in ms. */
  readonly openMs: number;
  /** The longest it stays open after failed probes, in ms. */
  readonly maxOpenMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failures: 5, openMs: 5_000, maxOpenMs: 60_000 };

export class CircuitBreaker {
  #failed = 0;
  /** When the last counted failure came back: a call sent before it failed with it. */
  #lastFailureAt = Number.NEGATIVE_INFINITY;
  #state: CircuitState = 'closed';
  #until = 0;
  /** When it last opened: a call sent before then that fails now says nothing new. */
  #openedAt = Number.NEGATIVE_INFINITY;
  #openMs: number;
  #probing = false;

  constructor(
    private readonly options: BreakerOptions,
    /** Every change of state (metrics, status page). */
    private readonly changed: (state: CircuitState) => void = () => {},
  ) {
    this.#openMs = options.openMs;
  }

  /** The state at `now`: an open breaker past its time is half-open. */
  state(now: number): CircuitState {
    if (this.#state === 'open' && now >= this.#until) this.#set('half-open');
    return this.#state;
  }

  /** How long until calls may go again (0 when they may now). */
  retryInMs(now: number): number {
    return this.state(now) === 'open' ? this.#until - now : 0;
  }

  /** Whether a call could be sent now, without taking the half-open probe. */
  canCall(now: number): boolean {
    const state = this.state(now);
    return state === 'closed' || (state === 'half-open' && !this.#probing);
  }

  /** Whether a call may be sent now; half-open lets one probe out at a time. */
  mayCall(now: number): boolean {
    const state = this.state(now);
    if (state === 'closed') return true;
    if (state === 'open' || this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** A call got a usable answer (any status but 5xx/429, or a transport failure). */
  succeeded(): void {
    this.#failed = 0;
    this.#lastFailureAt = Number.NEGATIVE_INFINITY;
    this.#probing = false;
    this.#openMs = this.options.openMs;
    if (this.#state !== 'closed') this.#set('closed');
  }

  /** A call sent at `sentAt` failed without a usable answer at `now`. */
  failed(now: number, sentAt: number): void {
    // A straggler sent before the breaker opened is not the half-open probe: it neither reopens the
    // breaker for longer nor frees the probe still out.
    if (this.#state !== 'closed' && sentAt < this.#openedAt) return;
    const probeFailed = this.#state === 'half-open';
    this.#probing = false;
    if (!probeFailed && sentAt < this.#lastFailureAt) return; // it failed with the one counted
    this.#failed++;
    this.#lastFailureAt = now;
    if (!probeFailed && (this.options.failures === 0 || this.#failed < this.options.failures)) return;
    if (probeFailed) this.#openMs = Math.min(this.options.maxOpenMs, this.#openMs * 2);
    this.#until = now + this.#openMs;
    this.#openedAt = now;
    this.#set('open');
  }

  /**
   * A call ended with nothing learnt (a 429, or its caller went away before it left). One sent
   * (`sentAt`) before the breaker opened is not the half-open probe: the probe stays out.
   */
  released(sentAt = Number.POSITIVE_INFINITY): void {
    if (this.#state !== 'closed' && sentAt < this.#openedAt) return;
    this.#probing = false;
  }

  /** Indistinguishable from a fresh breaker. */
  get isFresh(): boolean {
    return this.#state === 'closed' && this.#failed === 0;
  }

  #set(state: CircuitState): void {
    this.#state = state;
    this.changed(state);
  }
}
