// RATE_HEADERS: what the upstream last said of each scope's budget, as this replica heard it, and its
// series. A scope is an app or a tenant (SPEC §8d), unbounded in number: the series carry no scope
// label, only the scope nearest to running out (the status page lists the scopes).
import type { SchedulerObserver } from '@batch-proxy/core';
import { Gauge, type Registry } from 'prom-client';

type Heard = Parameters<NonNullable<SchedulerObserver['onRateHeaders']>>[0];

export interface RateHeaderEntry {
  readonly key: string;
  readonly appId: string;
  /** What the upstream said remains; undefined: no count (Graph's hint alone). */
  readonly remaining: number | undefined;
  /** Until the reset, as of now, in ms (undefined: not said). */
  readonly resetInMs: number | undefined;
  /** The rate the scope's bucket spends at now. */
  readonly ratePerSec: number;
}

/** The most scopes remembered (the one heard from longest ago goes first). */
const MAX_SCOPES = 10_000;
/** Figures older than this are of a window long over: forgotten. */
const IDLE_MS = 600_000;

export class RateHeaderBoard {
  readonly #scopes = new Map<string, Heard & { at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Hand this to the observer's `onRateHeaders`. */
  readonly record = (e: Heard): void => {
    this.#scopes.delete(e.key); // re-inserted last: in order of the last word
    this.#scopes.set(e.key, { ...e, at: this.#now() });
    if (this.#scopes.size > MAX_SCOPES) {
      const oldest = this.#scopes.keys().next();
      if (!oldest.done) this.#scopes.delete(oldest.value);
    }
  };

  /** The `n` scopes heard from last, newest first; a reset counts down from when it was heard. */
  recent(n: number): RateHeaderEntry[] {
    this.#forgetIdle();
    const now = this.#now();
    return [...this.#scopes.values()]
      .reverse()
      .slice(0, n)
      .map((e) => ({
        key: e.key,
        appId: e.appId,
        remaining: e.remaining,
        resetInMs: e.resetInMs === undefined ? undefined : Math.max(0, e.resetInMs - (now - e.at)),
        ratePerSec: e.ratePerSec,
      }));
  }

  /** The scope with the least remaining (undefined: none heard with a count). */
  lowest(): RateHeaderEntry | undefined {
    let low: RateHeaderEntry | undefined;
    for (const e of this.recent(MAX_SCOPES)) {
      if (e.remaining !== undefined && (low?.remaining === undefined || e.remaining < low.remaining)) low = e;
    }
    return low;
  }

  get size(): number {
    this.#forgetIdle();
    return this.#scopes.size;
  }

  #forgetIdle(): void {
    const now = this.#now();
    for (const [key, e] of this.#scopes) {
      if (now - e.at < IDLE_MS) break;
      this.#scopes.delete(key);
    }
  }
}

export function registerRateHeaders(registers: Registry[], board: RateHeaderBoard): void {
  new Gauge({
    name: 'batch_proxy_upstream_remaining',
    help: 'Requests the upstream says remain (RATE_HEADERS), in the scope with the least left; -1 when none was heard in the last 10 minutes',
    registers,
    collect() {
      this.set(board.lowest()?.remaining ?? -1);
    },
  });
  new Gauge({
    name: 'batch_proxy_upstream_reset_seconds',
    help: 'Seconds until the upstream resets the budget of the scope with the least left (RATE_HEADERS); 0 when unknown',
    registers,
    collect() {
      this.set((board.lowest()?.resetInMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'batch_proxy_upstream_rate_scopes',
    help: 'Scopes whose budget the upstream reported in the last 10 minutes (RATE_HEADERS)',
    registers,
    collect() {
      this.set(board.size);
    },
  });
}
