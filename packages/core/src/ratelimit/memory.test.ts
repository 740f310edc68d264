// The in-process limiter: the conformance suite, and the share it applies while Redis is down.

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../batcher/clock.js';
import { describeLimiterConformance } from './limiter.case.js';
import type { BucketLimit, PaceReport } from './limiter.js';
import { MemoryLimiter } from './memory.js';

describeLimiterConformance('MemoryLimiter', () => new MemoryLimiter());

describe('MemoryLimiter at the tolerance epsilon', () => {
  it('never says −1 remaining, and holds the bucket its grant empties', async () => {
    let now = 1_000;
    const limiter = new MemoryLimiter({ now: () => now });
    const limit = { ratePerSec: 100, burst: 1 };
    const first = await limiter.acquire('k', limit, 1_000);
    expect(first).toMatchObject({ granted: true, remaining: 0 });
    await limiter.settle('k', limit, first.granted ? first.grant : undefined);
    now = 1_009.9999995; // 5e-7 ms before the next token: within EPSILON_MS
    expect(await limiter.acquire('k', limit, 1_000)).toMatchObject({ granted: true, remaining: 0 });
    now = 1_020;
    expect(await limiter.acquire('k', limit)).toMatchObject({ granted: false });
  });
});

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

describe('MemoryLimiter with adaptive pacing', () => {
  const limit: BucketLimit = {
    ratePerSec: 1, // ignored: the learned rate replaces it
    burst: 1,
    pace: {
      maxRatePerSec: 20,
      minRatePerSec: 1,
      initialRatePerSec: 10,
      decreaseFactor: 0.5,
      increaseStep: 5,
      probeIntervalMs: 1000,
    },
  };

  function paced() {
    const clock = new ManualClock(0);
    const limiter = new MemoryLimiter({ now: () => clock.now() });
    const reports: PaceReport[] = [];
    limiter.onPace((r) => reports.push(r));
    return { clock, limiter, reports };
  }

  it('paces at the learned rate: a 429 halves it, and the bucket spaces grants accordingly', async () => {
    const { clock, limiter, reports } = paced();
    expect(await limiter.acquire('k', limit)).toMatchObject({ granted: true, ratePerSec: 10 });
    await clock.advance(100);
    await limiter.pause('k', limit, 50);
    expect(reports.at(-1)).toEqual({ key: 'k', ratePerSec: 5, adjusted: 'decrease' });
    await clock.advance(50);
    expect(await limiter.acquire('k', limit)).toMatchObject({ granted: true, ratePerSec: 5 });
    // At 5/s: the next grant one interval (200 ms) on, not 100.
    await clock.advance(199);
    expect(await limiter.acquire('k', limit)).toMatchObject({ granted: false, ratePerSec: 5 });
    await clock.advance(1);
    expect(await limiter.acquire('k', limit)).toMatchObject({ granted: true, ratePerSec: 5 });
  });

  it('raises the rate after an interval with demand, not after one with lone calls', async () => {
    const { clock, limiter, reports } = paced();
    await limiter.acquire('lone', limit); // empties the bucket, but it was full: no demand
    await limiter.acquire('refused', limit);
    await limiter.acquire('refused', limit); // refused: demand
    await limiter.acquire('prompt', limit);
    await clock.advance(100);
    await limiter.acquire('prompt', limit); // empties the bucket its token refilled just now: demand
    await clock.advance(1000);
    expect(await limiter.acquire('lone', limit)).toMatchObject({ ratePerSec: 10 });
    expect(await limiter.acquire('refused', limit)).toMatchObject({ ratePerSec: 15 });
    expect(await limiter.acquire('prompt', limit)).toMatchObject({ ratePerSec: 15 });
    expect(reports.filter((r) => r.adjusted === 'increase').map((r) => r.key)).toEqual(['refused', 'prompt']);
  });
});
