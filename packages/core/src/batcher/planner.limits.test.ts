// The planner's limits at their edges: byte and batch caps, the order of groups whose queues were
// created in another order than their oldest ops arrived, and the oldest op across flushes.

import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { AppState } from './app-state.js';
import type { PendingOp } from './op.js';
import { decide, type Flush, type LaneView, plan } from './planner.js';

const params = { windowMs: 10, maxOps: 5, draining: false, holdMs: 0, leadMs: 60 };

function add(app: AppState, seq: number, path: string, options: { credential?: string; body?: string } = {}) {
  const fresh = pendingOp({
    seq,
    method: options.body === undefined ? 'GET' : 'PUT',
    path,
    credential: options.credential ?? 'k',
    appId: app.appId,
    enqueuedAt: 100,
    deadline: 1_100,
  });
  const op: PendingOp = { ...fresh, op: { ...fresh.op, body: options.body } };
  app.add(op);
  return op;
}

const seqsOf = (flushes: readonly Flush[]) => flushes.map((f) => [f.credential, f.ops.map((o) => o.seq)]);

describe('plan: caps', () => {
  it('fills a batch up to exactly maxBytes of payload, and sends the op that would pass it next', () => {
    const app = new AppState('a');
    const a = add(app, 1, '/users/1', { body: '"12345"' }); // 7 bytes
    const b = add(app, 2, '/users/2', { body: '"123"' }); // 5: 12 in all, exactly the cap
    add(app, 3, '/users/3', { body: '"1"' }); // 3 more would pass it
    // Before the window ends: the batch is full, it need not wait.
    const p = plan(app, 100, { ...params, maxBytes: 12 });
    expect(p.flushes).toEqual([{ credential: 'k', ops: [a, b], reason: 'full' }]);
  });

  it('sends an op larger than maxBytes alone rather than never', () => {
    const app = new AppState('a');
    const big = add(app, 1, '/users/1', { body: '"0123456789"' });
    const small = add(app, 2, '/users/2', { body: '"1"' });
    expect(plan(app, 100, { ...params, maxBytes: 4 }).flushes).toEqual([
      { credential: 'k', ops: [big], reason: 'full' },
    ]);
    app.leave([big]);
    app.finish(big);
    expect(plan(app, 100, { ...params, maxBytes: 4 }).flushes).toEqual([]);
    expect(plan(app, 110, { ...params, maxBytes: 4 }).flushes).toEqual([
      { credential: 'k', ops: [small], reason: 'window' },
    ]);
  });

  it('ends a batch before an op whose own cap it would pass', () => {
    const app = new AppState('a');
    const a = add(app, 1, '/users/1');
    const capped = add(app, 2, '/users/2');
    capped.batchCap = 1; // its batch was refused as a whole: it goes alone
    add(app, 3, '/users/3');
    expect(plan(app, 100, params).flushes).toEqual([{ credential: 'k', ops: [a], reason: 'full' }]);
    app.leave([a]);
    app.finish(a);
    expect(plan(app, 100, params).flushes).toEqual([{ credential: 'k', ops: [capped], reason: 'full' }]);
  });
});

describe('plan: order of groups', () => {
  it('orders flushes by their oldest eligible op, not by when each group was created', () => {
    const app = new AppState('a');
    // Each group's first op is backing off; the ops that may leave now arrived in another order.
    for (const [seq, credential] of [
      [1, 'kA'],
      [2, 'kB'],
      [3, 'kC'],
    ] as const)
      add(app, seq, `/users/${seq}`, { credential }).notBefore = 500;
    add(app, 4, '/users/4', { credential: 'kB' });
    add(app, 5, '/users/5', { credential: 'kC' });
    add(app, 6, '/users/6', { credential: 'kA' });
    const p = plan(app, 110, params);
    expect(seqsOf(p.flushes)).toEqual([
      ['kB', [4]],
      ['kC', [5]],
      ['kA', [6]],
    ]);
    expect(p.wakeAt).toBe(500);
  });
});

describe('decide: the rest lane', () => {
  it('takes the oldest op of the group whose turn it is (the first flush), not the oldest of all', () => {
    const app = new AppState('a');
    const ops = [5, 3, 4].map((seq) => add(app, seq, `/users/${seq}`, { credential: `k${seq}` }));
    const older = add(app, 1, '/users/1', { credential: 'k5' });
    // Flushes come in turn order: k5's group first, its oldest op first.
    const flushes: Flush[] = [
      { credential: 'k5', ops: [older, ops[0] as PendingOp], reason: 'window' },
      ...ops.slice(1).map((op): Flush => ({ credential: op.credential, ops: [op], reason: 'window' })),
    ];
    const lanes: LaneView = {
      batchOpen: false,
      batchClosedForMs: 1_000,
      hasRest: true,
      restOpen: true,
      windowMs: 10,
      singleOpDirect: false,
    };
    expect(decide(flushes, lanes)).toEqual({ kind: 'single', op: older, budget: 'rest' });
    // The next group in turn, though another's op is older.
    expect(decide(flushes.slice(1).reverse(), lanes)).toEqual({ kind: 'single', op: ops[2], budget: 'rest' });
  });
});
