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

/** Fields every fault has: which calls it applies to. */
export interface Targeted {
  /** Calls to the batch endpoint (default), single calls, or either. */
  on?: 'batch' | 'single' | 'any';
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
