// A Budget told the upstream's own figures (RATE_HEADERS) on a manual clock: it spends at their
// rate until their reset, pauses when nothing remains, and never goes past the operator's rate.

import { describe, expect, it } from 'vitest';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { Budget } from './budget.js';
import { ManualClock } from './clock.js';

const limit = { ratePerSec: 10, burst: 4 };

function budget() {
  const clock = new ManualClock();
  const b = new Budget('batch', 'k', limit, {
    limiter: new MemoryLimiter({ now: () => clock.now() }),
    clock,
    leaseMs: 5_000,
    wake: () => {},
  });
  return { clock, b };
}

const waiting = { waitedMs: 0 };

describe('Budget.heard', () => {
  it('spends at the heard rate and burst until the reset, then at its own again', async () => {
    const { clock, b } = budget();
    await b.heard({ ratePerSec: 2, forMs: 1000, maxBurst: 1 });
    expect(b.spending(clock.now())).toEqual({ ratePerSec: 2, burst: 1 });
    expect(b.interval).toBe(500);
    expect(b.isFresh(clock.now())).toBe(false);
    const first = await b.acquire(waiting);
    expect(first).toMatchObject({ granted: true, remaining: 0 });
    await b.settle(first, waiting);
    expect(await b.acquire(waiting)).toMatchObject({ granted: false });
    await clock.advance(500);
    const second = await b.acquire(waiting);
    expect(second.granted).toBe(true);
    await b.settle(second, waiting);
    await clock.advance(499);
    expect(b.spending(clock.now()).ratePerSec).toBe(2);
    await clock.advance(1);
    expect(b.spending(clock.now())).toBe(limit);
    expect(b.interval).toBe(100);
  });

  it('never spends faster than its own limit, nor bursts more than it', async () => {
    const { clock, b } = budget();
    await b.heard({ ratePerSec: 50, forMs: 1000, maxBurst: 100 });
    expect(b.spending(clock.now())).toEqual(limit);
    await b.heard({ ratePerSec: 5, forMs: 1000, maxBurst: 0 });
    expect(b.spending(clock.now())).toEqual({ ratePerSec: 5, burst: 1 });
    await b.heard({ ratePerSec: 5, forMs: 1000 });
    expect(b.spending(clock.now())).toEqual({ ratePerSec: 5, burst: 4 });
  });

  it('pauses until the reset when nothing remains', async () => {
    const { clock, b } = budget();
    await b.heard({ ratePerSec: 10, forMs: 3000, pauseMs: 3000 });
    expect(b.closedUntil).toBe(3000);
    expect(b.isOpen(2999)).toBe(false);
    expect(await b.acquire(waiting)).toMatchObject({ granted: false });
    await clock.advance(3000);
    expect((await b.acquire(waiting)).granted).toBe(true);
  });

  it('keeps the last figures when an answer says nothing', async () => {
    const { clock, b } = budget();
    await b.heard({ ratePerSec: 1, forMs: 1000 });
    await b.heard(undefined);
    expect(b.spending(clock.now()).ratePerSec).toBe(1);
  });
});
