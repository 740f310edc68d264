// A Budget on a manual clock against the in-process limiter: when it says to ask again, exactly.

import { describe, expect, it } from 'vitest';
import type { BucketLimit, Limiter } from '../ratelimit/limiter.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { PacedLimiter } from '../ratelimit/paced.js';
import { Budget } from './budget.js';
import { ManualClock } from './clock.js';

function budget(limit = { ratePerSec: 10, burst: 1 }, limiter?: Limiter) {
  const clock = new ManualClock();
  let wakes = 0;
  const b = new Budget('batch', 'k', limit, {
    limiter: limiter ?? new MemoryLimiter({ now: () => clock.now() }),
    clock,
    leaseMs: 5_000,
    wake: () => wakes++,
  });
  return { clock, b, wakes: () => wakes };
}

const waiting = { waitedMs: 0 };

describe('Budget', () => {
  it('closes an emptied bucket for one interval, then for one interval after the answer', async () => {
    const { clock, b } = budget();
    const grant = await b.acquire(waiting);
    expect(grant).toMatchObject({ granted: true, remaining: 0 });
    expect(b.blockedUntil).toBe(100);
    await clock.advance(40);
    await b.settle(grant, waiting);
    expect(b.blockedUntil).toBe(140);
  });

  it('looks again after at most one interval when a lease holds the bucket', async () => {
    const { clock, b } = budget();
    await b.acquire(waiting);
    await clock.advance(100);
    const denied = await b.acquire(waiting);
    expect(denied).toMatchObject({ granted: false });
    expect(denied.granted || denied.retryAfterMs).toBeGreaterThan(4_000);
    expect(b.blockedUntil).toBe(200);
  });

  it('keeps a pause whatever a settle or a notice says afterwards', async () => {
    const { clock, b, wakes } = budget();
    const grant = await b.acquire(waiting);
    await b.pause(2_000);
    await b.settle(grant, waiting);
    expect(b.blockedUntil).toBe(2_000);
    b.reopened(0);
    expect(b.blockedUntil).toBe(2_000);
    expect(wakes()).toBe(2);
    await clock.advance(2_000);
    expect(b.isOpen(clock.now())).toBe(true);
    expect(await b.acquire(waiting)).toMatchObject({ granted: true });
  });

  it("keeps a pause until the limiter's own ends, when the limiter records it later", async () => {
    // The limiter reads its clock after the budget (µs later in process; a round trip on Redis): a
    // budget that reopened at its own reading would ask a bucket still paused, and be denied.
    const clock = new ManualClock();
    class SlowPause extends MemoryLimiter {
      override async pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
        await clock.advance(5);
        return super.pause(key, limit, ms);
      }
    }
    const limit = { ratePerSec: 10, burst: 1 };
    const b = new Budget('batch', 'k', limit, {
      limiter: new SlowPause({ now: () => clock.now() }),
      clock,
      leaseMs: 5_000,
      wake: () => {},
    });
    const grant = await b.acquire(waiting);
    const pausing = b.pause(2_000);
    // Closed from the 429 on, while the limiter records the pause.
    expect([b.blockedUntil, b.closedUntil]).toEqual([2_000, 2_000]);
    await pausing;
    expect([b.blockedUntil, b.closedUntil]).toEqual([2_005, 2_005]);
    await b.settle(grant, waiting);
    expect(b.blockedUntil).toBe(2_005);
    b.reopened(0);
    expect(b.blockedUntil).toBe(2_005);
    await clock.advance(2_000);
    expect(b.isOpen(clock.now())).toBe(true);
    expect(await b.acquire(waiting)).toMatchObject({ granted: true });
  });

  it('keeps a pause from the 429 when the limiter fails to record it, however long it took to fail', async () => {
    const clock = new ManualClock();
    class FailingPause extends MemoryLimiter {
      override async pause(): Promise<void> {
        await clock.advance(3_000); // a timeout
        throw new Error('down');
      }
    }
    const b = new Budget(
      'batch',
      'k',
      { ratePerSec: 10, burst: 1 },
      {
        limiter: new FailingPause({ now: () => clock.now() }),
        clock,
        leaseMs: 5_000,
        wake: () => {},
      },
    );
    await b.pause(2_000);
    expect([b.blockedUntil, b.closedUntil]).toEqual([2_000, 2_000]);
  });

  it('treats a failing limiter as a short denial and a lost settle as a poll', async () => {
    const broken: Limiter = {
      acquire: () => Promise.reject(new Error('down')),
      settle: () => Promise.reject(new Error('down')),
      pause: () => Promise.reject(new Error('down')),
      charge: () => Promise.reject(new Error('down')),
      peek: () => Promise.reject(new Error('down')),
      close: () => Promise.resolve(),
    };
    const { b } = budget({ ratePerSec: 10, burst: 1 }, broken);
    expect(await b.acquire(waiting)).toEqual({ granted: false, remaining: 0, retryAfterMs: 100 });
    expect(b.blockedUntil).toBe(100);
    await b.settle({ granted: true, remaining: 0, settleAfterMs: 0, grant: { leased: true } }, waiting);
    expect(b.blockedUntil).toBe(100);
    await b.pause(500);
    expect(b.blockedUntil).toBe(500);
    await b.charge(3);
  });

  it('estimates the tokens left from the last word and the refill since', async () => {
    const { clock, b } = budget({ ratePerSec: 10, burst: 5 });
    await b.acquire(waiting);
    await b.acquire(waiting);
    expect(b.tokensAt(clock.now())).toBe(3);
    expect(b.tokensAt(clock.now() + 150)).toBe(4.5);
    expect(b.tokensAt(clock.now() + 10_000)).toBe(5);
  });

  it('follows the learned rate of a paced bucket: its interval is the rate the limiter paced at', async () => {
    const clock = new ManualClock();
    const memory = new MemoryLimiter({ now: () => clock.now() });
    const pace = {
      maxRatePerSec: 40,
      minRatePerSec: 1,
      initialRatePerSec: 10,
      decreaseFactor: 0.5,
      increaseStep: 1,
      probeIntervalMs: 1000,
    };
    const limiter = new PacedLimiter(memory, { pace, buckets: new Set(['batch']) });
    // The configured rate (1/s) is not what the bucket paces at once learned.
    const b = new Budget(
      'batch',
      'u|app|batch',
      { ratePerSec: 1, burst: 1 },
      {
        limiter,
        clock,
        leaseMs: 5_000,
        wake: () => {},
      },
    );
    const grant = await b.acquire(waiting);
    expect(b.interval).toBe(100);
    expect(b.blockedUntil).toBe(100);
    await b.settle(grant, waiting);
    await b.pause(50); // a 429: the limiter halves the rate
    await clock.advance(100); // the settle's spacing, at 10/s
    expect(await b.acquire(waiting)).toMatchObject({ granted: true, ratePerSec: 5 });
    expect(b.interval).toBe(200);
    expect(b.blockedUntil).toBe(300);
  });
});

describe('Budget.askAgainAt', () => {
  it('is the end of a block; once over, undefined unless denied, then one poll on (the interval, at least 20 ms)', async () => {
    const { clock, b } = budget({ ratePerSec: 10, burst: 1 });
    expect(b.askAgainAt(0, false)).toBeUndefined();
    expect(b.askAgainAt(0, true)).toBe(100);
    const grant = await b.acquire(waiting);
    await b.settle(grant, waiting);
    expect(b.askAgainAt(0, false)).toBe(100);
    expect(b.askAgainAt(0, true)).toBe(100);
    await clock.advance(100);
    expect(b.askAgainAt(100, false)).toBeUndefined();
    const fast = budget({ ratePerSec: 1_000, burst: 1 }).b;
    expect(fast.askAgainAt(7, true)).toBe(27);
  });
});
