// The planner is pure: a queue and what the budgets last said in, flushes and a wake-up time out.

import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { AppState } from './app-state.js';
import type { PendingOp } from './op.js';
import { decide, type Flush, holdMs, type LaneView, plan } from './planner.js';

let seq = 0;
function add(app: AppState, method: 'GET' | 'PUT', path: string, at: number, credential = 'k'): PendingOp {
  const op = pendingOp({
    seq: seq++,
    method,
    path,
    credential,
    appId: app.appId,
    enqueuedAt: at,
    deadline: at + 1_000,
  });
  app.add(op);
  return op;
}

const params = { windowMs: 10, maxOps: 3, draining: false, holdMs: 0, leadMs: 60 };

describe('plan', () => {
  it('waits for the window of a partial batch, and says until when', () => {
    const app = new AppState('a');
    add(app, 'GET', '/users/1', 100);
    expect(plan(app, 105, params)).toEqual({
      expired: [],
      doomed: [],
      flushes: [],
      wakeAt: 110,
      nextDeadline: 1_100,
    });
    expect(plan(app, 110, params).flushes.map((f) => f.reason)).toEqual(['window']);
  });

  it('says the earliest deadline of the ops still live apart from the windows', () => {
    const app = new AppState('a');
    add(app, 'GET', '/users/1', 100, 'k1');
    add(app, 'GET', '/users/2', 50, 'k2');
    const p = plan(app, 105, params);
    expect([p.wakeAt, p.nextDeadline]).toEqual([110, 1_050]);
    // Expired and doomed ops are no deadline to wait for.
    expect(plan(app, 1_060, { ...params, closedUntil: 1_100 }).nextDeadline).toBe(Number.POSITIVE_INFINITY);
  });

  it('flushes a full batch at once, and a held one at the window plus the hold', () => {
    const app = new AppState('a');
    for (const u of [1, 2, 3, 4]) add(app, 'GET', `/users/${u}`, 100);
    expect(plan(app, 100, params).flushes.map((f) => [f.reason, f.ops.length])).toEqual([['full', 3]]);
    const one = new AppState('b');
    add(one, 'GET', '/users/1', 100);
    expect(plan(one, 100, { ...params, holdMs: 25 }).wakeAt).toBe(135);
    expect(plan(one, 135, { ...params, holdMs: 25 }).flushes.map((f) => f.reason)).toEqual(['hold']);
    // Never held past the deadline less the lead: 1100 − 60.
    expect(plan(one, 100, { ...params, holdMs: 5_000 }).wakeAt).toBe(1_040);
  });

  it('leaves out ops behind an earlier conflicting op, and ops backing off', () => {
    const app = new AppState('a');
    const put = add(app, 'PUT', '/users/1', 100);
    add(app, 'GET', '/users/1', 100);
    const other = add(app, 'GET', '/users/2', 100);
    other.notBefore = 150;
    expect(plan(app, 120, params)).toMatchObject({ flushes: [{ ops: [put] }], wakeAt: 150 });
  });

  it('expires ops past their deadline, oldest first', () => {
    const app = new AppState('a');
    const old = add(app, 'GET', '/users/1', 0);
    add(app, 'GET', '/users/2', 500);
    const p = plan(app, 1_000, params);
    expect(p.expired).toEqual([old]);
    expect(p.flushes.map((f) => f.ops.length)).toEqual([1]);
  });

  it('dooms an op due no later than a closed lane reopens: at that instant it is already expired', () => {
    // Eligibility skips an op whose deadline is at or before the reopening (deadline <= liveAfter);
    // one left out of both lists would wait unanswered until its deadline instead of at once.
    const app = new AppState('a');
    const due = add(app, 'GET', '/users/1', 0); // deadline 1000
    const later = add(app, 'GET', '/users/2', 1);
    const p = plan(app, 100, { ...params, closedUntil: 1_000 });
    expect(p.doomed).toEqual([due]);
    expect(p.flushes.map((f) => f.ops)).toEqual([[later]]);
    expect(p.wakeAt).toBe(later.deadline);
    expect(plan(app, 100, { ...params, closedUntil: 999 }).doomed).toEqual([]);
  });

  it("expires and dooms an op with its caller's own deadline wherever it waits, and waits for it", () => {
    const app = new AppState('a');
    const put = add(app, 'PUT', '/users/1', 0); // deadline 1000, in flight below
    const patient = add(app, 'GET', '/users/1', 10); // deadline 1010
    const hurried = pendingOp({
      seq: seq++,
      method: 'GET',
      path: '/users/1/x',
      appId: 'a',
      enqueuedAt: 20,
      deadline: 220,
      hurried: true,
    });
    app.add(hurried);
    const soon = pendingOp({
      seq: seq++,
      method: 'GET',
      path: '/users/2',
      appId: 'a',
      enqueuedAt: 30,
      deadline: 400,
      hurried: true,
    });
    app.add(soon);
    app.leave([put]);
    // Behind the write, the hurried op's deadline comes first: the planner wakes for it.
    expect(plan(app, 100, params)).toMatchObject({ expired: [], doomed: [], nextDeadline: 220 });
    expect(plan(app, 220, params)).toMatchObject({ expired: [hurried], doomed: [] });
    // A lane closed past its deadline dooms it at once, behind an older op that is not doomed.
    expect(plan(app, 100, { ...params, closedUntil: 300 })).toMatchObject({ doomed: [hurried] });
    expect(plan(app, 100, { ...params, closedUntil: 300 }).flushes.map((f) => f.ops)).toEqual([[soon]]);
    expect(patient.state).toBe('queued');
  });

  it('orders groups by their oldest op and keeps credentials apart', () => {
    const app = new AppState('a');
    add(app, 'GET', '/users/1', 100, 'k2');
    add(app, 'GET', '/users/2', 100, 'k1');
    add(app, 'GET', '/users/3', 100, 'k2');
    const flushes = plan(app, 110, params).flushes;
    expect(flushes.map((f) => [f.credential, f.ops.length])).toEqual([
      ['k2', 2],
      ['k1', 1],
    ]);
  });
});

describe('holdMs (token economy)', () => {
  it('is 0 above the low water mark, and grows to one interval as the bucket empties', () => {
    expect(holdMs(500, 500, 1_000)).toBe(0);
    expect(holdMs(51, 500, 1_000)).toBe(0);
    expect(holdMs(26, 500, 1_000)).toBe(500);
    expect(holdMs(1, 500, 1_000)).toBe(1_000);
    expect(holdMs(0, 500, 1_000)).toBe(1_000);
    // Under a burst of 10 there is no reserve to manage.
    expect(holdMs(0, 9, 1_000)).toBe(0);
  });
});

describe('decide', () => {
  const app = new AppState('a');
  const a = add(app, 'GET', '/users/1', 0);
  const b = add(app, 'GET', '/users/2', 0);
  const one: Flush = { credential: 'k', ops: [a], reason: 'window' };
  const two: Flush = { credential: 'k', ops: [a, b], reason: 'window' };
  const lanes: LaneView = {
    batchOpen: true,
    batchClosedForMs: 0,
    hasRest: true,
    restOpen: true,
    windowMs: 10,
    singleOpDirect: false,
  };

  it('takes the batch lane while it is open', () => {
    expect(decide([two], lanes)).toEqual({ kind: 'batch', flush: two });
    expect(decide([], lanes)).toEqual({ kind: 'none' });
  });

  it('gives the oldest op to the rest lane only while the batch lane is closed for over a window', () => {
    const closed = { ...lanes, batchOpen: false };
    expect(decide([two], { ...closed, batchClosedForMs: 10 })).toEqual({ kind: 'none' });
    expect(decide([two], { ...closed, batchClosedForMs: 11 })).toEqual({
      kind: 'single',
      op: a,
      budget: 'rest',
    });
    expect(decide([two], { ...closed, batchClosedForMs: 11, restOpen: false })).toEqual({ kind: 'none' });
    expect(decide([two], { ...closed, batchClosedForMs: 11, hasRest: false })).toEqual({ kind: 'none' });
  });

  it('sends a lone op as a single call under SINGLE_OP_DIRECT, paid from the rest budget or else the batch one', () => {
    const direct = { ...lanes, singleOpDirect: true };
    expect(decide([one], direct)).toEqual({ kind: 'single', op: a, budget: 'rest' });
    expect(decide([one], { ...direct, hasRest: false, restOpen: false })).toEqual({
      kind: 'single',
      op: a,
      budget: 'batch',
    });
    expect(decide([one], { ...direct, restOpen: false })).toEqual({ kind: 'batch', flush: one });
    expect(decide([two], direct)).toEqual({ kind: 'batch', flush: two });
  });
});
