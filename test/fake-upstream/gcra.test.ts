import { describe, expect, it } from 'vitest';
import { Gcra } from './gcra.js';

describe('Gcra', () => {
  it('admits the burst at once, then exactly one call per interval, with no slack', () => {
    const g = new Gcra({ ratePerSec: 10, burst: 2 });
    expect(g.take('a', 0)).toBe(0);
    expect(g.take('a', 0)).toBe(0);
    expect(g.take('a', 0)).toBe(100);
    expect(g.take('a', 99.99)).toBeCloseTo(0.01, 6);
    expect(g.take('a', 100)).toBe(0);
    expect(g.take('a', 100)).toBe(100);
    expect(g.take('a', 200)).toBe(0);
  });

  it('does not count refused calls', () => {
    const g = new Gcra({ ratePerSec: 1, burst: 1 });
    expect(g.take('a', 0)).toBe(0);
    for (let t = 1; t < 1000; t += 100) expect(g.take('a', t)).toBeGreaterThan(0);
    expect(g.take('a', 1000)).toBe(0);
  });

  it('keeps one state per key and refills fully after idling', () => {
    const g = new Gcra({ ratePerSec: 3, burst: 3 });
    for (let i = 0; i < 3; i++) expect(g.take('a', 0)).toBe(0);
    expect(g.take('a', 0)).toBeGreaterThan(0);
    expect(g.take('b', 0)).toBe(0);
    for (let i = 0; i < 3; i++) expect(g.take('a', 10_000)).toBe(0);
    expect(g.take('a', 10_000)).toBeCloseTo(1000 / 3, 6);
  });

  it('rejects invalid limits with a TypeError', () => {
    expect(() => new Gcra({ ratePerSec: 0, burst: 1 })).toThrow(TypeError);
    expect(() => new Gcra({ ratePerSec: 1, burst: 0 })).toThrow(TypeError);
  });
});
