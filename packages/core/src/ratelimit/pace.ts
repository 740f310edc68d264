// Adaptive pacing, pure: AIMD on a bucket's rate for upstreams that publish no rate (docs/graph-dialect.md
// §3). The in-process limiter calls it; scripts/includes/pace.lua is the same arithmetic run inside
// Redis (keep the two in step; redis.test.ts runs both against the same sequences).
//
// Why AIMD and not a gradient limiter: the only trustworthy signal is a 429 (latency reflects
// cost-weighted service limits, not queueing). Why β = 0.9: the rate saws between β·L and L, so its
// mean stays within 10% of the hidden limit L. The upstream's burst hides an overshoot for a while
// (20 requests at 5/s over the limit: 4 s), so plain AIMD settles over the limit; hence, BIC-like, a
// ceiling (the rate that last saw a 429): a 429 at or below it cuts twice and lowers it, the climb
// goes halfway back to it and waits there, and only past it does the step double (§3).

/** The operator's bounds and the controller's constants (PACE_* variables). */
export interface PaceParams {
  /** The operator's maximum: the rate never goes above it. */
  readonly maxRatePerSec: number;
  readonly minRatePerSec: number;
  /** Where a bucket with no learned state starts. */
  readonly initialRatePerSec: number;
  /** β: a congestion event multiplies the rate by it (0 < β < 1). */
  readonly decreaseFactor: number;
  /** α: requests/s added per probe interval that saw demand and no congestion (the least step). */
  readonly increaseStep: number;
  /** Length of a probe interval, and the shortest cooldown after a decrease. */
  readonly probeIntervalMs: number;
}

/** A bucket's learned pace. Times on the limiter's clock (ms); -Infinity = never. */
export interface PaceState {
  readonly rate: number;
  /** When the last decrease happened. */
  readonly decAt: number;
  /** Until when congestion changes the rate no more: the 429s of one overshoot are one event. */
  readonly coolUntil: number;
  /** Start of the current probe interval. */
  readonly probeFrom: number;
  /** The last demand: an acquire refused, or one that emptied the bucket. */
  readonly demandAt: number;
  /** The last congestion event (a 429). */
  readonly congestedAt: number;
  /** The rate the last decrease was made from (0 = none yet): a rate known to have seen a 429. */
  readonly ceiling: number;
  /** Clean probe intervals in a row at or above the ceiling: the probe's step doubles with each. */
  readonly streak: number;
}

export type PaceEvent =
  /** The upstream answered 429 (per op or whole call); `retryAfterMs` is its Retry-After. */
  | { readonly kind: 'congestion'; readonly retryAfterMs: number }
  /** The limiter refused an acquire, or a grant emptied the bucket: the app wants more. */
  | { readonly kind: 'demand' }
  /** Any other look at the bucket (a grant with tokens left): only ends a probe interval. */
  | { readonly kind: 'look' };

export type PaceAdjustment = 'increase' | 'decrease';

export interface PaceStep {
  readonly state: PaceState;
  /** Set when this event changed the rate. */
  readonly adjusted: PaceAdjustment | undefined;
}

const NEVER = Number.NEGATIVE_INFINITY;

/** The state of a bucket seen for the first time at `now`. */
export function paceStart(params: PaceParams, now: number): PaceState {
  return {
    rate: clamp(params.initialRatePerSec, params),
    decAt: NEVER,
    coolUntil: NEVER,
    probeFrom: now,
    demandAt: NEVER,
    congestedAt: NEVER,
    ceiling: 0,
    streak: 0,
  };
}

/** The rate a bucket paces at now (the state's, within the bounds, which may have changed since). */
export function paceRate(state: PaceState | undefined, params: PaceParams): number {
  return state === undefined ? clamp(params.initialRatePerSec, params) : clamp(state.rate, params);
}

/**
 * Applies one event at `now`. First a probe interval that has ended is judged (increase when it saw
 * demand and no congestion, and no cooldown runs); then the event itself.
 */
export function paceApply(
  stored: PaceState | undefined,
  now: number,
  params: PaceParams,
  event: PaceEvent,
): PaceStep {
  let s = stored ?? paceStart(params, now);
  let rate = clamp(s.rate, params);
  let adjusted: PaceAdjustment | undefined;
  if (now >= s.probeFrom + params.probeIntervalMs) {
    // 429s of the overshoot that caused the last decrease may land until its cooldown ends, when
    // this interval starts. Demand now counts towards the interval that starts now.
    if (
      s.demandAt >= s.probeFrom &&
      s.congestedAt <= s.probeFrom &&
      event.kind !== 'congestion' &&
      rate < params.maxRatePerSec
    ) {
      const up = raise(rate, s.ceiling, s.streak, params);
      if (up.rate > rate) adjusted = 'increase';
      rate = up.rate;
      s = { ...s, streak: up.streak };
    }
    s = { ...s, probeFrom: now };
  }
  switch (event.kind) {
    case 'demand':
      return { state: { ...s, rate, demandAt: now }, adjusted };
    case 'look':
      return { state: { ...s, rate }, adjusted };
    case 'congestion': {
      const wait = Math.max(0, event.retryAfterMs);
      if (now >= s.coolUntil) {
        // A 429 at or below the last ceiling is more evidence: the last cut was not enough (the limit
        // fell, or the upstream's burst hid how far over it the rate was). Cut twice, and put the
        // ceiling between the cut and here.
        const below = rate <= s.ceiling;
        const factor = below ? params.decreaseFactor * params.decreaseFactor : params.decreaseFactor;
        const cut = Math.max(params.minRatePerSec, rate * factor);
        const coolUntil = now + Math.max(wait, params.probeIntervalMs);
        const ceiling = below ? (rate * (1 + params.decreaseFactor)) / 2 : rate;
        return {
          state: {
            ...s,
            rate: cut,
            decAt: now,
            coolUntil,
            // The next probe interval starts when the cooldown ends: one spent paused by the
            // Retry-After cannot show whether the new rate is too high.
            probeFrom: coolUntil,
            congestedAt: now,
            ceiling,
            streak: 0,
          },
          adjusted: cut < rate ? 'decrease' : adjusted,
        };
      }
      // Within the cooldown: the same overshoot. A longer Retry-After lengthens the cooldown, counted
      // from the decrease (not from now, or 429s that keep coming would never be acted on again).
      const coolUntil = Math.max(s.coolUntil, s.decAt + wait);
      return {
        state: { ...s, rate, coolUntil, probeFrom: Math.max(s.probeFrom, coolUntil), congestedAt: now },
        adjusted,
      };
    }
  }
}

/**
 * Clean intervals spent at the ceiling before probing past it: long enough for the upstream's burst
 * to drain if the ceiling is still over its limit (then the 429 comes here, not after a raise).
 */
const PLATEAU = 2;
/** The probe's step doubles at most this many times (8 α). */
const MAX_DOUBLINGS = 3;

/**
 * One clean probe interval's increase. Below the ceiling (the rate that last saw a 429): halfway
 * back to it, at least one step, never past it. At or above it: PLATEAU intervals unchanged (none
 * before the first 429), then one step, doubling with each clean interval in a row, so a limit that
 * rose is found in a few.
 */
function raise(
  rate: number,
  ceiling: number,
  streak: number,
  params: PaceParams,
): { rate: number; streak: number } {
  if (rate < ceiling) {
    const next = Math.min(ceiling, rate + Math.max(params.increaseStep, (ceiling - rate) / 2));
    return { rate: Math.min(params.maxRatePerSec, next), streak: 0 };
  }
  // No ceiling yet (no 429 seen): nothing to wait at.
  const plateau = ceiling > 0 ? PLATEAU : 0;
  if (streak < plateau) return { rate, streak: streak + 1 };
  const next = rate + params.increaseStep * 2 ** Math.min(streak - plateau, MAX_DOUBLINGS);
  return { rate: Math.min(params.maxRatePerSec, next), streak: streak + 1 };
}

/** A state that says nothing a fresh one would not: it may be forgotten (bounded memory). */
export function paceIdle(state: PaceState, now: number, idleMs: number): boolean {
  return now - Math.max(state.probeFrom, state.demandAt, state.congestedAt) >= idleMs;
}

/** How long a learned pace is kept after its bucket's last event (then it starts again). */
export const PACE_IDLE_MS = 600_000;

function clamp(rate: number, params: PaceParams): number {
  return Math.min(params.maxRatePerSec, Math.max(params.minRatePerSec, rate));
}

/**
 * The parameters in the one string the Lua scripts take (their last argument): exact decimals,
 * space-separated, in the order of PaceParams.
 */
export function paceArg(params: PaceParams | undefined): string {
  if (params === undefined) return '';
  return [
    params.maxRatePerSec,
    params.minRatePerSec,
    params.initialRatePerSec,
    params.decreaseFactor,
    params.increaseStep,
    params.probeIntervalMs,
  ]
    .map(String)
    .join(' ');
}

/** Checks a set of parameters; returns what is wrong, or undefined. */
export function paceProblem(params: PaceParams): string | undefined {
  const { maxRatePerSec: max, minRatePerSec: min, initialRatePerSec: init } = params;
  if (!(min > 0 && Number.isFinite(max) && min <= max)) return `need 0 < min (${min}) <= max (${max})`;
  if (!(init >= min && init <= max)) return `initial rate ${init} must be within [${min}, ${max}]`;
  if (!(params.decreaseFactor > 0 && params.decreaseFactor < 1))
    return `decrease factor ${params.decreaseFactor} must be in (0, 1)`;
  if (!(params.increaseStep > 0 && Number.isFinite(params.increaseStep)))
    return `increase step ${params.increaseStep} must be positive`;
  if (!(params.probeIntervalMs > 0 && Number.isFinite(params.probeIntervalMs)))
    return `probe interval ${params.probeIntervalMs} must be positive`;
  return undefined;
}
