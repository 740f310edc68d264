import { describe, expect, it } from 'vitest';
import {
  GRAPH_HINT_FROM,
  GRAPH_HINT_HOLD_MS,
  headerPace,
  marginProblem,
  RESET_QUANTUM_MS,
  tightenReset,
} from './header-pace.js';

const params = { ceilingPerSec: 100, margin: 0.1 };

describe('headerPace from counts', () => {
  it('spreads what remains, less the margin, over the time to reset', () => {
    expect(headerPace({ remaining: 50, resetInMs: 30_000 }, 100, params)).toEqual({
      ratePerSec: 1.5,
      forMs: 30_000,
      maxBurst: 45,
    });
    expect(headerPace({ remaining: 50, resetInMs: 30_000 }, 100, { ceilingPerSec: 100, margin: 0 })).toEqual({
      ratePerSec: 50 / 30,
      forMs: 30_000,
      maxBurst: 50,
    });
  });
  it('never goes faster than the operator configured', () => {
    expect(headerPace({ remaining: 5000, resetInMs: 1000 }, 100, params)).toEqual({
      ratePerSec: 100,
      forMs: 1000,
      maxBurst: 4500,
    });
    expect(headerPace({ remaining: 1000, resetInMs: 9000 }, 100, params)).toEqual({
      ratePerSec: 100,
      forMs: 9000,
      maxBurst: 900,
    });
  });
  it('spreads over the window when no reset is said (a rolling window)', () => {
    expect(headerPace({ remaining: 8640, windowMs: 86_400_000 }, 100, params)).toEqual({
      ratePerSec: 0.09,
      forMs: 86_400_000,
      maxBurst: 7776,
    });
  });
  it('prefers the reset to the window', () => {
    expect(headerPace({ remaining: 10, resetInMs: 1000, windowMs: 60_000 }, 100, params)?.forMs).toBe(1000);
  });
  it('pauses until the reset when nothing remains (a limit of 0 too)', () => {
    expect(headerPace({ remaining: 0, resetInMs: 4000 }, 100, params)).toEqual({
      ratePerSec: 100,
      forMs: 4000,
      pauseMs: 4000,
    });
    expect(headerPace({ remaining: 0, limit: 0, resetInMs: 10 }, 100, params)?.pauseMs).toBe(10);
  });
  it('pauses when less than one call is left once the margin is held back', () => {
    expect(headerPace({ remaining: 1, resetInMs: 4000 }, 100, params)?.pauseMs).toBe(4000);
    expect(headerPace({ remaining: 1, resetInMs: 4000 }, 100, { ceilingPerSec: 100, margin: 0 })).toEqual({
      ratePerSec: 0.25,
      forMs: 4000,
      maxBurst: 1,
    });
    expect(headerPace({ remaining: 2, resetInMs: 4000 }, 100, params)).toEqual({
      ratePerSec: 0.45,
      forMs: 4000,
      maxBurst: 1,
    });
  });
  it('says nothing of a window already over, or with no time to spread over', () => {
    expect(headerPace({ remaining: 0, resetInMs: 0 }, 100, params)).toBeUndefined();
    expect(headerPace({ remaining: 3 }, 100, params)).toBeUndefined();
    expect(headerPace({ remaining: 0 }, 100, params)).toBeUndefined();
    expect(headerPace(undefined, 100, params)).toBeUndefined();
    expect(headerPace({ limit: 5, resetInMs: 100 }, 100, params)).toBeUndefined();
  });
});

describe("headerPace from Graph's hint", () => {
  it('slows the current rate to bring usage back under the hint threshold, less the margin', () => {
    expect(GRAPH_HINT_FROM).toBe(0.8);
    expect(GRAPH_HINT_HOLD_MS).toBe(10_000);
    expect(headerPace({ usage: 0.8 }, 50, params)).toEqual({ ratePerSec: 45, forMs: 10_000 });
    expect(headerPace({ usage: 1 }, 50, params)?.ratePerSec).toBeCloseTo(36, 10);
    expect(headerPace({ usage: 1.8 }, 50, params)?.ratePerSec).toBeCloseTo(20, 10);
  });
  it('ignores a usage below the threshold', () => {
    expect(headerPace({ usage: 0.79 }, 50, params)).toBeUndefined();
  });
  it('never goes above the ceiling, whatever the current rate', () => {
    expect(headerPace({ usage: 0.8 }, 1000, params)?.ratePerSec).toBe(100);
  });
  it('with a count too, the slower of the two; a pause wins', () => {
    expect(headerPace({ usage: 1, remaining: 100, resetInMs: 10_000 }, 50, params)).toEqual({
      ratePerSec: 9,
      forMs: 10_000,
      maxBurst: 90,
    });
    expect(headerPace({ usage: 1, remaining: 100_000, resetInMs: 1000 }, 50, params)?.ratePerSec).toBeCloseTo(
      36,
      10,
    );
    expect(headerPace({ usage: 1, remaining: 0, resetInMs: 3000 }, 50, params)?.pauseMs).toBe(3000);
    expect(headerPace({ usage: 1, remaining: 2, resetInMs: 0 }, 50, params)?.ratePerSec).toBeCloseTo(36, 10);
  });
});

describe('marginProblem', () => {
  it('accepts [0, 1)', () => {
    expect(marginProblem(0)).toBeUndefined();
    expect(marginProblem(0.99)).toBeUndefined();
    expect(marginProblem(1)).toMatch(/margin/);
    expect(marginProblem(-0.01)).toMatch(/margin/);
    expect(marginProblem(Number.NaN)).toMatch(/margin/);
  });
});

describe('tightenReset', () => {
  it('keeps the earliest bound of one window: a later one within a quantum is the same window', () => {
    expect(RESET_QUANTUM_MS).toBe(1000);
    expect(tightenReset({ remaining: 5, resetInMs: 2000 }, 100, 1500)).toEqual({
      reading: { remaining: 5, resetInMs: 1400 },
      resetAt: 1500,
    });
    expect(tightenReset({ remaining: 5, resetInMs: 1399 }, 100, 500)).toEqual({
      reading: { remaining: 5, resetInMs: 400 },
      resetAt: 500,
    });
  });
  it('takes a tighter bound, a new window (a quantum or more later), or a first one as said', () => {
    expect(tightenReset({ remaining: 5, resetInMs: 1000 }, 100, 1500)).toEqual({
      reading: { remaining: 5, resetInMs: 1000 },
      resetAt: 1100,
    });
    expect(tightenReset({ remaining: 5, resetInMs: 1400 }, 100, 500)).toEqual({
      reading: { remaining: 5, resetInMs: 1400 },
      resetAt: 1500,
    });
    expect(tightenReset({ remaining: 5, resetInMs: 1000 }, 100, undefined).resetAt).toBe(1100);
  });
  it('forgets a bound already past', () => {
    expect(tightenReset({ remaining: 5, resetInMs: 900 }, 100, 100)).toEqual({
      reading: { remaining: 5, resetInMs: 900 },
      resetAt: 1000,
    });
    expect(tightenReset({ remaining: 5, resetInMs: 900 }, 100, 101).resetAt).toBe(101);
  });
  it('keeps the known bound when the reading says no reset', () => {
    expect(tightenReset({ usage: 1 }, 100, 700)).toEqual({ reading: { usage: 1 }, resetAt: 700 });
  });
});
