// The rate to spend a budget at, from the upstream's own word on it (rate-headers.ts), pure. What
// remains is spread over the time to its reset — never a burst then a wait — less a safety margin for
// the calls already flying (sent, not yet counted in the figure) and for replicas reading the same
// counter a moment apart. The operator's rate stays the ceiling: headers only ever slow a scope.

import type { RateReading } from './rate-headers.js';

export interface HeaderPaceParams {
  /** The operator's rate (BATCH_RATE_PER_SEC): never exceeded, headers or not. */
  readonly ceilingPerSec: number;
  /** Share of what remains held back (RATE_HEADERS_MARGIN), in [0, 1). */
  readonly margin: number;
}

export interface HeaderPace {
  /** Spend at this rate (≤ the ceiling)… */
  readonly ratePerSec: number;
  /** …for this long, in ms: until the window resets, when the figures no longer hold. */
  readonly forMs: number;
  /** Nothing remains: send nothing for this long, in ms (the whole fleet). */
  readonly pauseMs?: number;
  /**
   * The most calls that may leave back to back: a bucket's burst must not spend more than remains
   * (a burst of 5 against 3 left earns 2 × 429). Undefined: the bucket's own.
   */
  readonly maxBurst?: number;
}

/** Graph sends its hint from 80 % of a limit used: the usage to steer back under. */
export const GRAPH_HINT_FROM = 0.8;
/**
 * How long Graph's hint holds: it says no window. Graph's documented limits count over windows of
 * 10 s to a few minutes (most per-app-and-tenant limits: 10 s); a hint still true after this is sent
 * again on the next answer and renews it.
 */
export const GRAPH_HINT_HOLD_MS = 10_000;

/**
 * The pace a reading asks for, given the rate the scope paces at now (`currentPerSec`, what Graph's
 * hint scales). Undefined: the reading says nothing to pace by (no time to spread over, or a window
 * already over), and the scope goes at the operator's rate.
 */
export function headerPace(
  reading: RateReading | undefined,
  currentPerSec: number,
  params: HeaderPaceParams,
): HeaderPace | undefined {
  if (reading === undefined) return undefined;
  const counted = countPace(reading, params);
  const hinted = hintPace(reading, currentPerSec, params);
  if (counted === undefined) return hinted;
  if (hinted === undefined || counted.pauseMs !== undefined) return counted;
  return counted.ratePerSec <= hinted.ratePerSec ? counted : hinted;
}

function countPace(
  reading: RateReading,
  { ceilingPerSec, margin }: HeaderPaceParams,
): HeaderPace | undefined {
  if (reading.remaining === undefined) return undefined;
  // A count with no reset is whole again one window on at the latest (Salesforce's rolling day).
  const spreadMs = reading.resetInMs ?? reading.windowMs;
  // A reset now or in the past: the figures are of a window already over.
  if (spreadMs === undefined || spreadMs <= 0) return undefined;
  const usable = reading.remaining * (1 - margin);
  // Less than one whole call left once the margin is held back (a limit of 0 included): wait for the
  // reset rather than spend the margin.
  if (usable < 1) return { ratePerSec: ceilingPerSec, forMs: spreadMs, pauseMs: spreadMs };
  return {
    ratePerSec: Math.min(ceilingPerSec, usable / (spreadMs / 1000)),
    forMs: spreadMs,
    maxBurst: Math.floor(usable),
  };
}

/**
 * Graph's early hint. Usage grows with the rate spent, so scaling the rate by GRAPH_HINT_FROM / usage
 * brings usage back to where the hint stops, and the margin keeps it under: at 0.8 (10 % margin) the
 * scope slows by 10 %, at 1.0 to 72 %, at 1.8 to 40 %.
 */
function hintPace(
  reading: RateReading,
  currentPerSec: number,
  { ceilingPerSec, margin }: HeaderPaceParams,
): HeaderPace | undefined {
  if (reading.usage === undefined || reading.usage < GRAPH_HINT_FROM) return undefined;
  const scaled = (currentPerSec * GRAPH_HINT_FROM * (1 - margin)) / reading.usage;
  return { ratePerSec: Math.min(ceilingPerSec, scaled), forMs: GRAPH_HINT_HOLD_MS };
}

/** Checks a margin; returns what is wrong, or undefined. */
export function marginProblem(margin: number): string | undefined {
  return margin >= 0 && margin < 1 ? undefined : `margin ${margin} must be in [0, 1)`;
}

/** Resets are said in whole seconds, rounded up: each answer's reset is late by up to this. */
export const RESET_QUANTUM_MS = 1000;

/**
 * The tightest reset instant known for the window a reading is of. A reset said in whole seconds is
 * an upper bound up to a second late; near the end of a window that second is most of the time left,
 * and spreading over it leaves calls unspent. Each answer of one window bounds the same instant, so
 * the earliest bound holds: a reset no more than a quantum after `knownAt` is the same window.
 * Returns the reading with its reset from `now` to that instant, and the instant to remember.
 */
export function tightenReset(
  reading: RateReading,
  now: number,
  knownAt: number | undefined,
): { reading: RateReading; resetAt: number | undefined } {
  if (reading.resetInMs === undefined) return { reading, resetAt: knownAt };
  const resetAt = now + reading.resetInMs;
  if (knownAt === undefined || knownAt <= now || resetAt < knownAt || resetAt - knownAt >= RESET_QUANTUM_MS)
    return { reading, resetAt };
  return { reading: { ...reading, resetInMs: knownAt - now }, resetAt: knownAt };
}
