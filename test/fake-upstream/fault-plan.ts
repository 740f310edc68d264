// The fault plan both fakes (TalkJS here, Graph in test/fake-graph) share: what a test can make the
// next calls do wrong, and which fault a call takes. Each fake defines its own fault variants and
// what "this call" means (batch or single, for which app or tenant).

/**
 * Mutable by tests while a fake runs. For each call: the first matching fault in `queue` is removed
 * and applied; else `always` if it matches; else, with `random.probability`, one of the matching
 * `random.faults` (seeded PRNG). Calls refused by the rate limiter or auth take no fault.
 */
export interface FaultPlan<F> {
  queue: F[];
  always?: F | undefined;
  random?: { probability: number; faults: F[] } | undefined;
}

/** Fields every fault has: which calls it applies to, and how long it holds the answer. */
export interface Targeted {
  /** Calls to the batch endpoint (default), single calls, or either. */
  on?: 'batch' | 'single' | 'any';
  /**
   * Hold the answer this long (ms). By default the work is done first and the answer is late
   * (a slow upstream: the caller may time out although the work was done); with
   * `delayBeforeExecute` the work is done only after the delay (even if the caller is gone).
   */
  delayMs?: number;
  delayBeforeExecute?: boolean;
}

/**
 * The faults of the HTTP exchange itself, alike in every dialect (`delayMs` combines with any; each
 * dialect adds faults of its batch format):
 * - `{ status }`: answer this status with the dialect's error body (or `body`) WITHOUT executing
 *   anything. With `afterExecute: true` the work is done first, then the error is answered (a gateway
 *   that lost the real answer). `retryAfterSec` adds a `Retry-After` header (use with 429/503).
 * - `{ delayMs }`: only a delay (see Targeted).
 * - `{ reset: 'before-execute' }`: destroy the socket without answering; nothing was executed.
 *   `{ reset: 'after-execute' }`: do all the work, then destroy the socket without answering.
 * - `{ truncateBody: true }`: execute, send headers with the full Content-Length but only half of
 *   the body, then destroy the socket.
 * - `{ notJson: true }`: execute, answer 200 with an HTML body.
 */
export type TransportFaultVariant =
  | { status: number; retryAfterSec?: number; afterExecute?: boolean; body?: unknown }
  | { delayMs: number }
  | { reset: 'before-execute' | 'after-execute' }
  | { truncateBody: true }
  | { notJson: true };

/** Every field of every transport variant, optional: what the server reads. */
export interface TransportFault extends Targeted {
  status?: number;
  retryAfterSec?: number;
  afterExecute?: boolean;
  body?: unknown;
  reset?: 'before-execute' | 'after-execute';
  truncateBody?: true;
  notJson?: true;
}

/** Whether fault `f` applies to a call of this kind for this scope (app or tenant). */
export function applies(
  f: Targeted,
  kind: 'batch' | 'single',
  scope: string | undefined,
  want: string,
): boolean {
  const on = f.on ?? 'batch';
  return (on === 'any' || on === kind) && (scope === undefined || scope === want);
}

/** The fault a call of `kind` for `want` (an app or tenant, read off a fault by `scopeOf`) takes. */
export function takeFaultFor<F extends Targeted>(
  plan: FaultPlan<F>,
  kind: 'batch' | 'single',
  scopeOf: (f: F) => string | undefined,
  want: string,
  random: () => number,
): F | undefined {
  return takeFault(plan, (f) => applies(f, kind, scopeOf(f), want), random);
}

export function takeFault<F>(
  plan: FaultPlan<F>,
  matches: (f: F) => boolean,
  random: () => number,
): F | undefined {
  const i = plan.queue.findIndex(matches);
  if (i >= 0) return plan.queue.splice(i, 1)[0];
  if (plan.always && matches(plan.always)) return plan.always;
  if (plan.random && random() < plan.random.probability) {
    const candidates = plan.random.faults.filter(matches);
    return candidates[Math.floor(random() * candidates.length)];
  }
  return undefined;
}

/** Empties a plan in place (a test may hold the object). */
export function clearPlan<F>(plan: FaultPlan<F>): void {
  plan.queue.length = 0;
  plan.always = undefined;
  plan.random = undefined;
}
