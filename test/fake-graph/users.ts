// Per-user faults of the fake Graph, and what it saw of each user. Graph (Outlook above all) throttles
// per mailbox: one user's requests draw 429s inside a 200 `$batch` while everyone else's run; and one
// user's backend can fail while the others' work. Tests set these at runtime (like the fault plan) and
// read the per-user counts to assert who was served, throttled or refused, and when.

/** Whose calls a per-user fault is for: a bearer token (without `Bearer `), a user id (the token's
 *  `/me`, i.e. its `oid`), or both (both must match). One of them is required. */
export interface UserSelector {
  token?: string;
  user?: string;
}

/**
 * Throttles one user per request, as Outlook does per mailbox: the first request of theirs opens a
 * window of `retryAfterSec` and is answered 429 with `Retry-After: retryAfterSec` (and
 * `x-ms-throttle-scope: scope` when given); every request of theirs arriving while the window is open
 * gets 429 too, with the remaining seconds (a caller that did not wait is throttled again). After the
 * window their requests run — until the next window, if `windows` allows one (default 1; Infinity:
 * throttled at every reopening). Inside a `$batch` only that user's requests get the 429 (the call
 * is 200); a single call gets the 429 whole. Throttled requests never run.
 */
export interface UserThrottle extends UserSelector {
  retryAfterSec: number;
  /** The `x-ms-throttle-scope` header value, e.g. `Mailbox/Application/…`. */
  scope?: string;
  windows?: number;
}

/**
 * Fails one user's calls whole: a `$batch` (or single call) carrying their token is answered `status`
 * (default 503) with a Graph error body and nothing runs; `retryAfterSec` adds `Retry-After`.
 */
export interface UserFailure extends UserSelector {
  status?: number;
  retryAfterSec?: number;
  /** `$batch` calls, single calls or either (default). */
  on?: 'batch' | 'single' | 'any';
}

/** Mutable by tests while the fake runs; `reset()` empties both lists. */
export interface UserFaults {
  throttle: UserThrottle[];
  fail: UserFailure[];
}

/** What the fake saw of one user (keyed by the user id a token acts for, or the token if none). */
export interface UserStats {
  /** Authorized `$batch` calls carrying their token (including those then failed by a UserFailure). */
  batchCalls: number;
  singleCalls: number;
  /** Their requests that ran (in a batch or single). */
  executed: number;
  /** Their requests (or single calls) answered 429 by a UserThrottle. */
  throttled: number;
  /** Of those: the ones that came in a later call while a window was still open (did not wait). */
  throttledEarly: number;
  /** Their calls answered whole by a UserFailure. */
  failedCalls: number;
  /** Calls refused 401 whose token claimed this user (`oid`) but was not valid (forged, expired). */
  forged: number;
  /** performance.now() (ms) of each authorized call of theirs as it arrived. */
  arrivals: number[];
}

/** Who made a call, as the fake authenticated it. */
export interface Caller {
  token: string;
  /** The user the token acts for; null for an app-only token. */
  me: string | null;
}

const emptyStats = (): UserStats => ({
  batchCalls: 0,
  singleCalls: 0,
  executed: 0,
  throttled: 0,
  throttledEarly: 0,
  failedCalls: 0,
  forged: 0,
  arrivals: [],
});

export function userKey(caller: Caller): string {
  return caller.me ?? caller.token;
}

export function selects(selector: UserSelector, caller: Caller): boolean {
  if (selector.token === undefined && selector.user === undefined) return false;
  return (
    (selector.token === undefined || selector.token === caller.token) &&
    (selector.user === undefined || selector.user === caller.me)
  );
}

interface Window {
  opened: number;
  until: number;
  byCall: number;
}

export class UserTracker {
  readonly faults: UserFaults = { throttle: [], fail: [] };
  readonly #stats = new Map<string, UserStats>();
  readonly #windows = new WeakMap<UserThrottle, Window>();

  stats(key: string): UserStats {
    let s = this.#stats.get(key);
    if (!s) {
      s = emptyStats();
      this.#stats.set(key, s);
    }
    return s;
  }

  /** Every user seen so far, by key. */
  all(): Map<string, UserStats> {
    return this.#stats;
  }

  /** The throttle a request of `caller` in call `callId` at `now` draws: its wait (ms) and scope. */
  throttle(caller: Caller, callId: number, now: number): { waitMs: number; scope?: string } | undefined {
    for (const t of this.faults.throttle) {
      if (!selects(t, caller)) continue;
      const w = this.#windows.get(t) ?? { opened: 0, until: Number.NEGATIVE_INFINITY, byCall: -1 };
      this.#windows.set(t, w);
      const stats = this.stats(userKey(caller));
      const scope = t.scope === undefined ? {} : { scope: t.scope };
      if (now < w.until) {
        stats.throttled++;
        if (callId !== w.byCall) stats.throttledEarly++;
        return { waitMs: w.until - now, ...scope };
      }
      if (w.opened < (t.windows ?? 1)) {
        w.opened++;
        w.until = now + t.retryAfterSec * 1000;
        w.byCall = callId;
        stats.throttled++;
        return { waitMs: t.retryAfterSec * 1000, ...scope };
      }
    }
    return undefined;
  }

  failure(caller: Caller, kind: 'batch' | 'single'): UserFailure | undefined {
    const f = this.faults.fail.find((x) => selects(x, caller) && [kind, 'any'].includes(x.on ?? 'any'));
    if (f) this.stats(userKey(caller)).failedCalls++;
    return f;
  }

  reset(): void {
    this.faults.throttle.length = 0;
    this.faults.fail.length = 0;
    this.#stats.clear();
  }
}
