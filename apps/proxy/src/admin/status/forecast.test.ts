// The burst forecast on injected time: readings are (ms, tokens) pairs, no clock is read.

import { describe, expect, it } from 'vitest';
import { forecastBurst, MIN_GAP_MS, TokenReadings, WINDOW_MS } from './forecast.js';

/** Readings one second apart from t=0, tokens as given. */
const series = (...tokens: number[]) => tokens.map((n, i) => ({ t: i * 1_000, tokens: n }));

describe('forecastBurst', () => {
  it('turns a steady fall into a drain rate and the time the burst runs out', () => {
    // The case: 500 → 276 in 40 s is 5.6 tokens/s; the last 30 s of it are fitted.
    const readings = Array.from({ length: 41 }, (_, i) => ({ t: i * 1_000, tokens: 500 - 5.6 * i }));
    const f = forecastBurst(readings, 40_000);
    expect(f.state).toBe('draining');
    expect(f.drainPerSec).toBe(5.6);
    // 276 tokens at 5.6/s: 49.3 s.
    expect(f.emptyInMs).toBe(49_286);
  });

  it('fits a line, so a sawtooth of grants and refills gives the average drain', () => {
    const f = forecastBurst(series(100, 98, 99, 96, 97, 94, 95, 92), 7_000);
    expect(f.state).toBe('draining');
    expect(f.drainPerSec).toBeCloseTo(1, 0);
    expect(f.emptyInMs).toBeGreaterThan(80_000);
    expect(f.emptyInMs).toBeLessThan(100_000);
  });

  it('says not draining when tokens hold or refill', () => {
    expect(forecastBurst(series(500, 500, 500, 500), 3_000)).toEqual({
      state: 'not-draining',
      drainPerSec: 0,
      emptyInMs: null,
    });
    const refilling = forecastBurst(series(10, 11, 12, 13, 14), 4_000);
    expect(refilling.state).toBe('not-draining');
    expect(refilling.drainPerSec).toBe(-1);
  });

  it('does not call less than one whole token lost over the readings a drain', () => {
    // Whole tokens: 500 then 499 once over 10 s is rounding, not a trend.
    const f = forecastBurst(series(500, 500, 500, 500, 500, 499, 500, 500, 500, 500, 500), 10_000);
    expect(f.state).toBe('not-draining');
    expect(f.emptyInMs).toBeNull();
  });

  it('measures until two readings are three seconds apart', () => {
    expect(forecastBurst(series(500), 0).state).toBe('measuring');
    expect(forecastBurst(series(500, 490, 480), 2_000)).toEqual({
      state: 'measuring',
      drainPerSec: null,
      emptyInMs: null,
    });
    expect(forecastBurst(series(500, 490, 480, 470), 3_000).state).toBe('draining');
  });

  it('reports an empty bucket as empty, with the drain when known', () => {
    expect(forecastBurst(series(3, 2, 1, 0), 3_000)).toEqual({
      state: 'empty',
      drainPerSec: 1,
      emptyInMs: null,
    });
    expect(forecastBurst(series(0), 0)).toEqual({ state: 'empty', drainPerSec: null, emptyInMs: null });
  });

  it('uses only the readings of the last WINDOW_MS', () => {
    // A fast drain long ago, flat for the last 30 s: not draining now.
    const old = Array.from({ length: 10 }, (_, i) => ({ t: i * 1_000, tokens: 500 - 20 * i }));
    const flat = Array.from({ length: 31 }, (_, i) => ({ t: 10_000 + i * 1_000, tokens: 320 }));
    const now = 40_000;
    expect(forecastBurst([...old, ...flat], now).state).toBe('not-draining');
    expect(now - WINDOW_MS).toBeGreaterThan(9_000);
  });

  it('is unknown without a reading', () => {
    expect(forecastBurst([], 0)).toEqual({ state: 'unknown', drainPerSec: null, emptyInMs: null });
  });
});

describe('TokenReadings', () => {
  it('forecasts from the readings it kept, per bucket', () => {
    const r = new TokenReadings();
    expect(r.observe('batch a', 0, 500).state).toBe('measuring');
    expect(r.observe('batch b', 0, 10).state).toBe('measuring');
    r.observe('batch a', 2_000, 480);
    const f = r.observe('batch a', 4_000, 460);
    expect(f).toEqual({ state: 'draining', drainPerSec: 10, emptyInMs: 46_000 });
    // The other bucket kept its own readings.
    expect(r.observe('batch b', 4_000, 10).state).toBe('not-draining');
  });

  it('keeps one reading per MIN_GAP_MS, so fast polls still span time', () => {
    const r = new TokenReadings();
    let f = r.observe('k', 0, 100);
    // Ten polls a second for four seconds.
    for (let t = 100; t <= 4_000; t += 100) f = r.observe('k', t, 100 - t / 1_000);
    expect(f.state).toBe('draining');
    expect(f.drainPerSec).toBeCloseTo(1, 1);
    expect(MIN_GAP_MS).toBeGreaterThan(100);
  });

  it('answers unknown when the limiter did not answer, keeping what it had', () => {
    const r = new TokenReadings();
    r.observe('k', 0, 50);
    expect(r.observe('k', 2_000, null).state).toBe('unknown');
    expect(r.observe('k', 4_000, 30).state).toBe('draining');
  });

  it('forgets buckets no longer listed', () => {
    const r = new TokenReadings();
    r.observe('batch a', 0, 1);
    r.observe('batch b', 0, 1);
    r.retain(new Set(['batch b']));
    expect(r.size).toBe(1);
    expect(r.observe('batch a', 4_000, 1).state).toBe('measuring');
  });
});
