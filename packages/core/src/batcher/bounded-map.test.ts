import { describe, expect, it } from 'vitest';
import { BoundedMap } from './bounded-map.js';

describe('BoundedMap', () => {
  it('evicts the least recently touched entry past its bound, and says so', () => {
    const evicted: string[] = [];
    const map = new BoundedMap<string, number>(2, 1_000, (key) => evicted.push(key));
    map.touch('a', 0, () => 1);
    map.touch('b', 1, () => 2);
    // Touching a makes b the oldest.
    expect(map.touch('a', 2, () => 99)).toBe(1);
    map.touch('c', 3, () => 3);
    expect(evicted).toEqual(['b']);
    expect([map.peek('a', 3), map.peek('b', 3), map.peek('c', 3)]).toEqual([1, undefined, 3]);
    expect(map.size).toBe(2);
  });

  it('forgets an entry untouched for idleMs at the next read (peek does not touch)', () => {
    const evicted: string[] = [];
    const map = new BoundedMap<string, number>(10, 100, (key) => evicted.push(key));
    map.touch('a', 0, () => 1);
    expect(map.peek('a', 99)).toBe(1);
    expect(map.peek('a', 100)).toBeUndefined();
    expect(evicted).toEqual(['a']);
    expect(map.size).toBe(0);
  });

  it('keeps an entry until its keepUntil past idleMs; a later touch never shortens it', () => {
    const map = new BoundedMap<string, number>(10, 100, () => {});
    map.touch('a', 0, () => 1, 500);
    expect(map.peek('a', 499)).toBe(1);
    map.touch('a', 450, () => 2);
    expect(map.peek('a', 549)).toBe(1);
    map.sweep(549);
    expect(map.size).toBe(1);
    map.sweep(550);
    expect(map.size).toBe(0);
  });

  it('sweeps expired entries (evicted) and those worth nothing (not evicted); delete is silent', () => {
    const evicted: string[] = [];
    const map = new BoundedMap<string, number>(10, 100, (key) => evicted.push(key));
    map.touch('old', 0, () => 1);
    map.touch('zero', 50, () => 0);
    map.touch('kept', 50, () => 2);
    map.touch('gone', 50, () => 3);
    map.delete('gone');
    map.sweep(120, (value) => value === 0);
    expect(evicted).toEqual(['old']);
    expect(map.values(120)).toEqual([2]);
  });
});
