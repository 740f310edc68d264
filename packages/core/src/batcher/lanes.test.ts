// The lanes over real budgets (the in-process limiter, a manual clock): which may be asked in a pass,
// until when none surely sends, when to look again.

import { describe, expect, it } from 'vitest';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { pendingOp } from '../testing/pending-op.js';
import { Budget, type BudgetName } from './budget.js';
import { ManualClock } from './clock.js';
import { Lanes } from './lanes.js';
import type { Plan } from './planner.js';

function lanes(withRest: boolean) {
  const clock = new ManualClock();
  const limiter = new MemoryLimiter({ now: () => clock.now() });
  const budget = (name: BudgetName, ratePerSec: number) =>
    new Budget(name, name, { ratePerSec, burst: 1 }, { limiter, clock, leaseMs: 5_000, wake: () => {} });
  const l = new Lanes(budget('batch', 10), withRest ? budget('rest', 4) : undefined, {
    windowMs: 5,
    singleOpDirect: false,
  });
  return { clock, l };
}

const waiting = { waitedMs: 0 };
const op = pendingOp({ seq: 1, method: 'GET', path: '/users/u', deadline: 10_000 });
const planned = (wakeAt: number): Plan => ({
  flushes: [{ credential: 'k', ops: [op], reason: 'window' }],
  expired: [],
  doomed: [],
  wakeAt,
  nextDeadline: 10_000,
});

describe('Lanes', () => {
  it('picks the budget an action spends', () => {
    const { l } = lanes(true);
    expect(l.budgetOf({ kind: 'batch', flush: { credential: 'k', ops: [op], reason: 'window' } })).toBe(
      l.batch,
    );
    expect(l.budgetOf({ kind: 'single', op, budget: 'rest' })).toBe(l.rest);
    expect(l.budgetOf({ kind: 'single', op, budget: 'batch' })).toBe(l.batch);
    const alone = lanes(false).l;
    expect(alone.budgetOf({ kind: 'single', op, budget: 'rest' })).toBe(alone.batch);
    expect(alone.budget('rest')).toBeUndefined();
  });

  it('opens at the earlier lane and is closed until the earlier lane may send', async () => {
    const { l } = lanes(true);
    expect([l.opensAt(), l.closedUntil(), l.isFresh(0)]).toEqual([0, 0, true]);
    await l.batch.acquire(waiting);
    await l.batch.pause(1_000);
    expect([l.opensAt(), l.closedUntil(), l.isFresh(0)]).toEqual([0, 0, false]);
    await l.rest?.acquire(waiting);
    await l.rest?.pause(300);
    expect([l.opensAt(), l.closedUntil()]).toEqual([300, 300]);
    const alone = lanes(false).l;
    await alone.batch.acquire(waiting);
    await alone.batch.pause(1_000);
    expect([alone.opensAt(), alone.closedUntil()]).toEqual([1_000, 1_000]);
  });

  it('a pass sees a denied budget closed, and looks again one poll on when its wait was over', async () => {
    const { l } = lanes(true);
    const pass = l.pass();
    expect(pass.view(0)).toEqual({
      batchOpen: true,
      batchClosedForMs: 0,
      hasRest: true,
      restOpen: true,
      windowMs: 5,
      singleOpDirect: false,
    });
    expect(pass.wakeAt(planned(50), 0)).toBe(50);
    pass.deny(l.batch);
    expect(pass.view(0)).toMatchObject({ batchOpen: false, batchClosedForMs: 100, restOpen: true });
    expect(pass.wakeAt(planned(500), 0)).toBe(100);
    pass.deny(l.rest as Budget);
    expect(pass.view(0)).toMatchObject({ batchOpen: false, restOpen: false });
    // The rest budget's interval (250 ms) is its poll; the earlier of both wins.
    expect(pass.wakeAt(planned(500), 0)).toBe(100);
    // A new pass has no denials.
    expect(l.pass().view(0)).toMatchObject({ batchOpen: true, restOpen: true });
    expect(l.pass().wakeAt(planned(500), 0)).toBe(500);
  });

  it('with nothing to send, wakes at the plan alone, whatever the budgets', async () => {
    const { l } = lanes(false);
    await l.batch.acquire(waiting);
    await l.batch.pause(1_000);
    const empty: Plan = { ...planned(70), flushes: [] };
    expect(l.pass().wakeAt(empty, 0)).toBe(70);
    expect(l.pass().wakeAt(planned(2_000), 0)).toBe(1_000);
  });
});

describe('LanePass with nothing planned', () => {
  it('wakes at the plan alone even when a budget it was denied asks again sooner', () => {
    const { l } = lanes(false);
    const pass = l.pass();
    pass.deny(l.batch);
    const empty: Plan = { ...planned(500), flushes: [] };
    expect(pass.wakeAt(empty, 0)).toBe(500);
    expect(pass.wakeAt(planned(500), 0)).toBe(100);
  });
});
