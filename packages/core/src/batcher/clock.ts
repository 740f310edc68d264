// Time, injected: the engine reads the time and sets timers only through a Clock, so its pacing can
// be tested at exact instants (ManualClock) and runs on the real one in production.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now(): number;
  /** Milliseconds since the Unix epoch (wall time): what an HTTP date (Retry-After) is read against. */
  epochMs(): number;
  /** Calls `fn` once, `ms` from now. `background`: the timer alone does not keep the process alive. */
  setTimeout(fn: () => void, ms: number, background?: boolean): Timer;
  /**
   * How much before its instant, by `now()`, a timer may fire (absent: 0, never early). Node's timers
   * count on libuv's loop clock — whole milliseconds, read once per loop turn — so one set from a
   * callback late in a turn fires up to a millisecond early by `performance.now()` (measured: 43 % of
   * the window timers under load, by up to 0.8 ms).
   */
  readonly timerSlackMs?: number;
  /**
   * Runs `fn` once the callbacks of this event-loop turn have run (setImmediate): the pump's pass for
   * every arrival and answer of one turn runs once (absent: each runs its pass at once).
   */
  readonly defer?: ((fn: () => void) => void) | undefined;
}

export const realClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  timerSlackMs: 1,
  defer: (fn) => void setImmediate(fn),
  setTimeout(fn, ms, background = false) {
    const handle = setTimeout(fn, Math.max(0, Math.ceil(ms)));
    if (background) handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Resolves after `ms` on `clock`, or at once when `signal` aborts (then with false). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const MANUAL_EPOCH_MS = Date.UTC(2026, 0, 1);

interface Pending {
  readonly at: number;
  readonly order: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. `advance` fires due timers in time order, each at its own
 * instant, and lets the promise work each one starts run before the next fires.
 */
export class ManualClock implements Clock {
  #now: number;
  #order = 0;
  #timers: Pending[] = [];
  readonly defer: ((fn: () => void) => void) | undefined;

  /**
   * `deferred`: passes wait for the end of the turn as on the real clock (`Clock.defer`); they run
   * while `advance` lets promise work run. Off: each kick runs its pass at once.
   */
  constructor(start = 0, options: { readonly deferred?: boolean } = {}) {
    this.#now = start;
    this.defer = options.deferred ? (fn) => void setImmediate(fn) : undefined;
  }

  now(): number {
    return this.#now;
  }

  /** Wall time moves with `now`, from a fixed instant (2026-01-01T00:00:00Z at `now` 0). */
  epochMs(): number {
    return MANUAL_EPOCH_MS + this.#now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer: Pending = { at: this.#now + Math.max(0, ms), order: this.#order++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    await settle();
    for (;;) {
      const due = this.#next(until);
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
      await settle();
    }
    this.#now = until;
  }

  /** The first timer due by `until` (earliest, then first set); drops cancelled ones on the way. */
  #next(until: number): Pending | undefined {
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    let due: Pending | undefined;
    for (const t of this.#timers) {
      if (t.at <= until && (!due || t.at < due.at || (t.at === due.at && t.order < due.order))) due = t;
    }
    return due;
  }
}

/** Lets queued promise callbacks run (several rounds: a callback may queue more). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
