// The planner's serial chains (Graph dependsOn) at their edges: when a chain is built instead of a
// parallel batch, which queued ops it takes and in what order, where the op cap, an op's own batch
// cap and the byte cap end it, and which ops it must leave out (past their deadline, backing off).

import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { AppState } from './app-state.js';
import type { PendingOp } from './op.js';
import { plan } from './planner.js';

// A window of 10 ms from t=100: a partial batch is ready at 110.
const params = { windowMs: 10, maxOps: 10, draining: false, holdMs: 0, leadMs: 60, chains: true };

interface Options {
  readonly method?: 'GET' | 'PUT';
  readonly body?: string;
  readonly deadline?: number;
}

function adder(app: AppState) {
  let seq = 0;
  return (path: string, o: Options = {}): PendingOp => {
    const fresh = pendingOp({
      seq: ++seq,
      method: o.method ?? 'PUT',
      path,
      appId: app.appId,
      enqueuedAt: 100,
      deadline: o.deadline ?? 1_100,
    });
    const op: PendingOp = { ...fresh, op: { ...fresh.op, body: o.body } };
    app.add(op);
    return op;
  };
}

const answer = (app: AppState, ops: readonly PendingOp[]) => {
  app.leave(ops);
  for (const op of ops) app.finish(op);
};

describe('plan: when a serial chain replaces the parallel batch', () => {
  it('chains the ops of one resource in arrival order, and a partial chain waits for its window', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1');
    const b = add('/users/1');
    const read = add('/users/1', { method: 'GET' });
    const c = add('/users/1');
    // Only `a` may leave in parallel: the others wait for it.
    expect(plan(app, 105, params)).toEqual({
      expired: [],
      doomed: [],
      flushes: [],
      wakeAt: 110,
      nextDeadline: 1_100,
    });
    expect(plan(app, 110, params).flushes).toEqual([
      { credential: 'k', ops: [a, b, read, c], reason: 'window', plan: 'serial' },
    ]);
    // Without chains, the same queue sends `a` alone.
    expect(plan(app, 110, { ...params, chains: false }).flushes).toEqual([
      { credential: 'k', ops: [a], reason: 'window' },
    ]);
  });

  it('builds no chain when the parallel batch is at least half full', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1');
    const b = add('/users/1');
    const other = add('/users/2', { method: 'GET' });
    // Two of four ops in parallel: half full, so the chain of three is not tried.
    expect(plan(app, 110, { ...params, maxOps: 4 }).flushes).toEqual([
      { credential: 'k', ops: [a, other], reason: 'window' },
    ]);
    // Two of five: less than half, and the chain carries more.
    expect(plan(app, 110, { ...params, maxOps: 5 }).flushes).toEqual([
      { credential: 'k', ops: [a, b, other], reason: 'window', plan: 'serial' },
    ]);
  });

  it('keeps the parallel batch when a chain would carry no more ops', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1');
    expect(plan(app, 110, params).flushes).toEqual([{ credential: 'k', ops: [a], reason: 'window' }]);
    const b = add('/users/2', { method: 'GET' });
    expect(plan(app, 110, params).flushes).toEqual([{ credential: 'k', ops: [a, b], reason: 'window' }]);
  });

  it('leaves out every op behind an unanswered op outside the chain, and takes the independent ones', () => {
    const app = new AppState('a');
    const add = adder(app);
    const flying = add('/users/1');
    app.leave([flying]);
    add('/users/1'); // behind `flying`
    const c = add('/users/2');
    const d = add('/users/2');
    add('/users/1', { method: 'GET' }); // behind `flying` too
    expect(plan(app, 110, params).flushes).toEqual([
      { credential: 'k', ops: [c, d], reason: 'window', plan: 'serial' },
    ]);
  });
});

describe('plan: what ends a serial chain', () => {
  it('is full at exactly maxOps ops, and leaves at once', () => {
    const app = new AppState('a');
    const add = adder(app);
    const ops = [1, 2, 3, 4].map(() => add('/users/1'));
    expect(plan(app, 100, { ...params, maxOps: 4 }).flushes).toEqual([
      { credential: 'k', ops, reason: 'full', plan: 'serial' },
    ]);
  });

  it('stops at maxOps and keeps the rest for after the chain is answered', () => {
    const app = new AppState('a');
    const add = adder(app);
    const first = [1, 2, 3, 4].map(() => add('/users/1'));
    const fifth = add('/users/1');
    expect(plan(app, 100, { ...params, maxOps: 4 }).flushes).toEqual([
      { credential: 'k', ops: first, reason: 'full', plan: 'serial' },
    ]);
    app.leave(first);
    // The fifth waits for the chain in flight: neither a batch nor a chain may take it.
    expect(plan(app, 110, { ...params, maxOps: 4 }).flushes).toEqual([]);
    for (const op of first) app.finish(op);
    expect(plan(app, 110, { ...params, maxOps: 4 }).flushes).toEqual([
      { credential: 'k', ops: [fifth], reason: 'window' },
    ]);
  });

  it("stops at the head's own batch cap", () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1');
    a.batchCap = 2;
    const b = add('/users/1');
    add('/users/1');
    expect(plan(app, 100, params).flushes).toEqual([
      { credential: 'k', ops: [a, b], reason: 'full', plan: 'serial' },
    ]);
  });

  it('ends before an op whose own batch cap the chain already reaches', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1');
    const b = add('/users/1');
    const c = add('/users/1');
    c.batchCap = 2;
    const d = add('/users/1');
    expect(plan(app, 100, params).flushes).toEqual([
      { credential: 'k', ops: [a, b], reason: 'full', plan: 'serial' },
    ]);
    answer(app, [a, b]);
    // `c` then leads a chain of at most two.
    expect(plan(app, 100, params).flushes).toEqual([
      { credential: 'k', ops: [c, d], reason: 'full', plan: 'serial' },
    ]);
  });

  it('fills up to exactly maxBytes of payload, and the op that would pass it leads the next chain', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1', { body: '"12345"' }); // 7 bytes
    const b = add('/users/1', { body: '"123"' }); // 5: 12 in all, exactly the cap
    const c = add('/users/1', { body: '"1"' }); // 3 more would pass it
    const d = add('/users/1', { body: '"1"' });
    expect(plan(app, 100, { ...params, maxBytes: 12 }).flushes).toEqual([
      { credential: 'k', ops: [a, b], reason: 'full', plan: 'serial' },
    ]);
    answer(app, [a, b]);
    expect(plan(app, 100, { ...params, maxBytes: 12 }).flushes).toEqual([]);
    expect(plan(app, 110, { ...params, maxBytes: 12 }).flushes).toEqual([
      { credential: 'k', ops: [c, d], reason: 'window', plan: 'serial' },
    ]);
  });

  it('counts ops without a payload as no bytes', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1', { body: '"12345"' });
    const b = add('/users/1', { method: 'GET' });
    const c = add('/users/1', { body: '"1234"' }); // 7 + 0 + 6: exactly the cap
    add('/users/1', { body: '"1"' });
    expect(plan(app, 100, { ...params, maxBytes: 13 }).flushes).toEqual([
      { credential: 'k', ops: [a, b, c], reason: 'full', plan: 'serial' },
    ]);
  });
});

describe('plan: ops a serial chain must leave out', () => {
  it('skips an op whose deadline has come, and every op behind it', () => {
    const app = new AppState('a');
    const add = adder(app);
    const late = add('/users/1', { deadline: 200 });
    add('/users/1');
    const free = add('/users/2');
    // At 200 `late` is expired (answered 503 by the caller of plan) but still unanswered: the op
    // behind it waits. `free` alone is no chain.
    expect(plan(app, 200, params)).toEqual({
      expired: [late],
      doomed: [],
      flushes: [{ credential: 'k', ops: [free], reason: 'window' }],
      wakeAt: 1_100,
      nextDeadline: 1_100,
    });
  });

  it('skips an op due before a closed lane reopens', () => {
    const app = new AppState('a');
    const add = adder(app);
    const doomed = add('/users/1', { deadline: 300 });
    add('/users/1');
    const p = plan(app, 110, { ...params, closedUntil: 301 });
    expect(p.doomed).toEqual([doomed]);
    expect(p.flushes).toEqual([]);
  });

  it('skips an op backing off until its back-off ends, and takes it when it does', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('/users/1');
    const b = add('/users/1');
    a.notBefore = 150;
    expect(plan(app, 149, params)).toEqual({
      expired: [],
      doomed: [],
      flushes: [],
      wakeAt: 150,
      nextDeadline: 1_100,
    });
    expect(plan(app, 150, params).flushes).toEqual([
      { credential: 'k', ops: [a, b], reason: 'window', plan: 'serial' },
    ]);
  });
});
