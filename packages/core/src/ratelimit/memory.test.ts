// The in-process limiter: the conformance suite, and the share it applies while Redis is down.

import { describe, expect, it } from 'vitest';
import { describeLimiterConformance } from './limiter.case.js';
import { MemoryLimiter } from './memory.js';

describeLimiterConformance('MemoryLimiter', () => new MemoryLimiter());

describe('MemoryLimiter share', () => {
  it('scales burst and rate by its share', async () => {
    let now = 1_000;
    const limiter = new MemoryLimiter({ share: 0.5, now: () => now });
    const limit = { ratePerSec: 10, burst: 10 };
    const remaining: number[] = [];
    for (;;) {
      const decision = await limiter.acquire('k', limit);
      if (!decision.granted) {
        // Half the rate: a token every 200 ms instead of 100.
        expect(decision.retryAfterMs).toBeCloseTo(200, 9);
        break;
      }
      remaining.push(decision.remaining);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    now += 200;
    expect(await limiter.acquire('k', limit)).toMatchObject({ granted: true, remaining: 0 });
  });

  it('keeps at least one token of burst for a small share', async () => {
    const limiter = new MemoryLimiter({ share: 0.1, now: () => 0 });
    expect(await limiter.acquire('k', { ratePerSec: 1, burst: 3 })).toMatchObject({
      granted: true,
      remaining: 0,
    });
    expect(await limiter.acquire('k', { ratePerSec: 1, burst: 3 })).toMatchObject({ granted: false });
  });
});
