// One loop per app: runs the app's step until it has nothing to do, then sleeps until the step's
// wake-up time (one timer per app, through the Clock). Re-run on every arrival, answer and timer; one
// pass at a time — a kick during a pass runs another pass after it.

import type { Clock, Timer } from './clock.js';

/** What a pass found: true when it made progress (run again), else the time to look again (Infinity: never). */
export type StepResult = true | number;

/**
 * One pass. Most passes (an arrival that fills no batch, an answer) decide without waiting and return
 * at once; only a pass that waits (for a token) returns a promise — a pass runs on every arrival and
 * answer, and a promise per pass was most of the engine's garbage per call. `timerAt`: the instant
 * the pump's last timer was set for, once it has fired (-Infinity before): a timer may fire a little
 * before it by the clock (`Clock.timerSlackMs`), and the step may count that instant as reached.
 */
export type Step = (timerAt: number) => StepResult | Promise<StepResult>;

export class Pump {
  #running = false;
  /** A pass is deferred to the end of this turn (Clock.defer). */
  #deferred = false;
  #again = false;
  #timer: Timer | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #firedAt = Number.NEGATIVE_INFINITY;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly step: Step,
    /** A bug, not a condition: the step threw. */
    private readonly crashed: (error: unknown) => void,
  ) {}

  /**
   * Run now — or, on a clock that defers, once this turn's other callbacks have run, so the arrivals
   * and answers of one turn cost one pass — or right after the pass under way.
   */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const defer = this.clock.defer;
    if (defer === undefined) {
      this.#start();
      return;
    }
    if (this.#deferred) return;
    this.#deferred = true;
    defer(() => {
      this.#deferred = false;
      if (this.#stopped) return;
      if (this.#running) this.#again = true;
      else this.#start();
    });
  }

  #start(): void {
    this.#running = true;
    this.#run();
  }

  /**
   * A pass by `at` at the latest, without one now: for a change that can matter no sooner (an
   * arrival while every lane is closed). During a pass, one more pass runs after it.
   */
  wakeBy(at: number): void {
    if (this.#stopped) return;
    if (this.#running) this.#again = true;
    else this.#arm(at);
  }

  /** No pass under way or due, and no timer set. */
  get isIdle(): boolean {
    return !this.#running && !this.#deferred && this.#timer === undefined;
  }

  /**
   * Runs `fn` as if it were a pass: the kicks it makes (one per op it answers) run one pass after it,
   * not one each — a pass that decides at once runs inside kick(), so a batch's ten answers would
   * otherwise plan ten times.
   */
  hold(fn: () => void): void {
    if (this.#running) {
      fn();
      return;
    }
    this.#running = true;
    this.#again = false;
    try {
      fn();
    } finally {
      this.#idle();
    }
  }

  /** No more passes or timers (the app was evicted). */
  stop(): void {
    this.#stopped = true;
    this.#arm(Number.POSITIVE_INFINITY);
  }

  /** Passes until one finds nothing to do; a pass that waits resumes the loop when it is done. */
  #run(): void {
    let waiting = false;
    try {
      for (;;) {
        this.#again = false;
        const result = this.step(this.#firedAt);
        if (typeof result === 'object') {
          waiting = true;
          result.then(
            (found) => this.#done(found),
            (error: unknown) => this.#failed(error),
          );
          return;
        }
        if (result === true || this.#again) continue;
        this.#arm(result);
        break;
      }
    } catch (error) {
      this.crashed(error);
    } finally {
      // Even when `crashed` itself throws (the error then reaches the kicker): a pump left running
      // would take no kick again, and the app's ops would never leave nor be shed.
      if (!waiting) this.#idle();
    }
  }

  #done(found: StepResult): void {
    if (found === true || this.#again) {
      this.#run();
      return;
    }
    this.#arm(found);
    this.#idle();
  }

  #failed(error: unknown): void {
    try {
      this.crashed(error);
    } finally {
      this.#idle();
    }
  }

  #idle(): void {
    this.#running = false;
    if (this.#again) this.kick();
  }

  #arm(at: number): void {
    if (!Number.isFinite(at)) {
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.#timer && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#firedAt = at;
      this.kick();
    }, at - this.clock.now());
  }
}
