// The in-process limiter stays bounded: every 1024 writes it forgets the buckets that are full again
// (each equals a fresh one), and only those.

import { describe, expect, it } from 'vitest';
import { MemoryLimiter } from './memory.js';

describe('MemoryLimiter sweep', () => {
  it('forgets the full buckets on every 1024th write, not before and not between', async () => {
    let now = 0;
    const limiter = new MemoryLimiter({ now: () => now });
    const limit = { ratePerSec: 10, burst: 2 }; // one token every 100 ms
    for (let i = 0; i < 1022; i++) await limiter.acquire(`k${i}`, limit);
    expect(limiter.size).toBe(1022);
    now = 100; // every one of those buckets is full again
    await limiter.acquire('late', limit); // write 1023: full again at 200
    expect(limiter.size).toBe(1023);
    await limiter.acquire('later', limit); // write 1024: the sweep
    expect(limiter.size).toBe(2);
    expect(await limiter.peek('late', limit)).toEqual({ tokens: 1, cooldownMs: 0 });

    // The next sweep is 1024 writes away: buckets full again stay until then.
    now = 200;
    await limiter.acquire('next', limit);
    expect(limiter.size).toBe(3);
    for (let i = 0; i < 1022; i++) await limiter.charge(`c${i}`, limit, 0);
    expect(limiter.size).toBe(1025);
    await limiter.charge('last', limit, 1); // write 2048
    // Full at 200: late, later and the 1022 charged for nothing; next and last are not.
    expect(limiter.size).toBe(2);
  });

  it('counts every kind of write toward the sweep', async () => {
    let now = 0;
    const limiter = new MemoryLimiter({ now: () => now });
    const limit = { ratePerSec: 10, burst: 2 };
    await limiter.acquire('a', limit);
    await limiter.settle('a', limit);
    await limiter.pause('b', limit, 50);
    now = 1_000;
    for (let i = 0; i < 1020; i++) await limiter.charge(`c${i}`, limit, 0);
    expect(limiter.size).toBe(1022);
    await limiter.acquire('d', limit); // write 1024
    expect(limiter.size).toBe(1);
  });
});
