// Calls that bypass the queue (admission.ts): one token each, asked for again on the budget's own
// schedule, and never past the caller's deadline (MAX_WAIT_MS). On a manual clock.

import { describe, expect, it } from 'vitest';
import type { Limiter } from '../ratelimit/limiter.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { Scheduler } from './scheduler.js';

/** Says "not your turn, ask again now" (a 0 ms denial, as a fleet's turn can) until `grantsFrom`. */
function turnDenying(clock: ManualClock, grantsFrom: number): { limiter: Limiter; asks: number[] } {
  const inner: Limiter = new MemoryLimiter({ now: () => clock.now() });
  const asks: number[] = [];
  const limiter: Limiter = {
    acquire: async (...args) => {
      asks.push(clock.now());
      if (clock.now() < grantsFrom) return { granted: false, remaining: 0, retryAfterMs: 0 };
      return inner.acquire(...args);
    },
    settle: (...args) => inner.settle(...args),
    charge: (...args) => inner.charge(...args),
    pause: (...args) => inner.pause(...args),
    peek: (...args) => inner.peek(...args),
    close: () => inner.close(),
  };
  return { limiter, asks };
}

describe('admit', () => {
  it('never holds a caller past its deadline, whatever the poll after a 0 ms denial', async () => {
    const clock = new ManualClock(0);
    // One token a second: a denied look is repeated one interval (1 s) on.
    const { limiter, asks } = turnDenying(clock, 1_900);
    const scheduler = new Scheduler(
      schedulerOptions({
        upstream: fakeTransport(clock),
        clock,
        limiter,
        maxWaitMs: 1_500,
        batchLimit: { ratePerSec: 1, burst: 1 },
      }),
    );
    let outcome: unknown;
    void scheduler.admit('app', 'batch').then((o) => {
      outcome = o;
    });
    await clock.advance(3_000);
    // Asked at 0 and 1,000, then at the deadline (1,500), where it is answered: not admitted at
    // 2,000, past its deadline.
    expect(asks).toEqual([0, 1_000, 1_500]);
    expect(outcome).toMatchObject({ code: 'PROXY_DEADLINE_EXCEEDED' });
  });

  it('admits a caller whose token comes before its deadline', async () => {
    const clock = new ManualClock(0);
    const { limiter, asks } = turnDenying(clock, 900);
    const scheduler = new Scheduler(
      schedulerOptions({
        upstream: fakeTransport(clock),
        clock,
        limiter,
        maxWaitMs: 1_500,
        batchLimit: { ratePerSec: 1, burst: 1 },
      }),
    );
    let outcome: unknown;
    void scheduler.admit('app', 'batch').then((o) => {
      outcome = o;
    });
    await clock.advance(3_000);
    expect(asks).toEqual([0, 1_000]);
    expect(typeof outcome).toBe('function');
  });
});
