// AppState's bookkeeping, exactly: whom a newcomer parks behind, who is unparked by an answer, which
// queued read a newcomer may join, the oldest queued op across groups, and the moves it refuses.

import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { AppState } from './app-state.js';
import type { PendingOp, Waiter } from './op.js';

interface Options {
  readonly credential?: string;
  readonly at?: number;
  readonly readKey?: string;
}

function adder(app: AppState) {
  let seq = 0;
  return (method: 'GET' | 'PUT', path: string, o: Options = {}): PendingOp => {
    const fresh = pendingOp({
      seq: ++seq,
      method,
      path,
      credential: o.credential ?? 'k',
      appId: app.appId,
      enqueuedAt: o.at ?? 100,
      deadline: 10_000,
    });
    const op: PendingOp = { ...fresh, readKey: method === 'GET' ? (o.readKey ?? `k ${path}`) : undefined };
    app.add(op);
    return op;
  };
}

const open = (app: AppState, credential = 'k') => [...(app.groups.get(credential)?.open() ?? [])];
const queued = (app: AppState, credential = 'k') => [...(app.groups.get(credential)?.queued() ?? [])];

function waiter(): Waiter {
  return { arrivedAt: 0, spanContext: undefined, resolve: () => {} };
}

describe('AppState: parking a newcomer', () => {
  it('parks a write behind the newest unanswered op on its resource, read or write', () => {
    const app = new AppState('a');
    const add = adder(app);
    const r = add('GET', '/users/1');
    const w1 = add('PUT', '/users/1');
    const w2 = add('PUT', '/users/1');
    expect([r.parked, w1.parked, w2.parked]).toEqual([false, true, true]);
    expect(r.dependents).toEqual([w1]);
    expect(w1.dependents).toEqual([w2]);
    expect(open(app)).toEqual([r]);
    expect(queued(app)).toEqual([r, w1, w2]);
  });

  it('parks a read behind the newest write only, never behind a read', () => {
    const app = new AppState('a');
    const add = adder(app);
    const r1 = add('GET', '/users/1', { readKey: 'r1' });
    const r2 = add('GET', '/users/1', { readKey: 'r2' });
    expect([r1.parked, r2.parked]).toEqual([false, false]);
    const w = add('PUT', '/users/1');
    const r3 = add('GET', '/users/1', { readKey: 'r3' });
    const r4 = add('GET', '/users/1', { readKey: 'r4' });
    expect([w.parked, r3.parked, r4.parked]).toEqual([true, true, true]);
    // Both later reads wait for the write (not for each other, not for the reads before it).
    expect(w.dependents).toEqual([r3, r4]);
    expect(r1.dependents).toEqual([]);
    expect(r2.dependents).toEqual([w]);
    expect(open(app)).toEqual([r1, r2]);
  });

  it('orders by what the dialect says an op does, not by its method (JSON-RPC: every call a POST)', () => {
    const app = new AppState('a');
    const rpc = (seq: number, write: boolean) => {
      const op = pendingOp({ seq, method: 'POST', path: '/rpc/x', appId: 'a', deadline: 10_000, write });
      app.add(op);
      return op;
    };
    const r1 = rpc(1, false);
    const r2 = rpc(2, false);
    const w = rpc(3, true);
    // Two reads side by side; the write behind the newest of them.
    expect([r1.isWrite, r1.parked, r2.parked, w.parked]).toEqual([false, false, false, true]);
    expect(open(app)).toEqual([r1, r2]);
  });

  it('parks nothing behind an op on another resource, or behind one already answered', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('PUT', '/users/1');
    const b = add('PUT', '/users/2');
    expect(b.parked).toBe(false);
    app.leave([a]);
    app.finish(a);
    const c = add('PUT', '/users/1');
    const d = add('GET', '/users/1');
    expect([c.parked, d.parked]).toEqual([false, true]);
    expect(a.dependents).toEqual([]);
    expect(c.dependents).toEqual([d]);
  });
});

describe('AppState: the newest op per resource', () => {
  it.each([
    ['a newcomer', 'PUT'],
    ['a read', 'GET'],
  ] as const)('still parks %s behind a newer write when an older write on its resource is answered', (_, method) => {
    const app = new AppState('a');
    const add = adder(app);
    const w1 = add('PUT', '/users/1');
    const w2 = add('PUT', '/users/1');
    app.leave([w1]);
    app.finish(w1);
    const late = add(method, '/users/1');
    expect(late.parked).toBe(true);
    expect(w2.dependents).toEqual([late]);
  });
});

describe('AppState: answers unpark', () => {
  it("opens an answered op's parked dependents, in arrival order among the open ones", () => {
    const app = new AppState('a');
    const add = adder(app);
    const w = add('PUT', '/users/1');
    const r1 = add('GET', '/users/1', { readKey: 'r1' });
    const other = add('PUT', '/users/2');
    const r2 = add('GET', '/users/1', { readKey: 'r2' });
    expect(open(app)).toEqual([w, other]);
    app.leave([w]);
    expect(open(app)).toEqual([other]);
    app.finish(w);
    expect([r1.parked, r2.parked]).toEqual([false, false]);
    expect(open(app)).toEqual([r1, other, r2]);
    expect(w.dependents).toEqual([]);
  });

  it('leaves parked the ops parked behind another op still unanswered', () => {
    const app = new AppState('a');
    const add = adder(app);
    const w1 = add('PUT', '/users/1');
    const w2 = add('PUT', '/users/1');
    const w3 = add('PUT', '/users/1');
    app.leave([w1]);
    app.finish(w1);
    expect([w2.parked, w3.parked]).toEqual([false, true]);
    expect(open(app)).toEqual([w2]);
  });

  it('does not put back a dependent that left in a chain; it comes back open if requeued', () => {
    const app = new AppState('a');
    const add = adder(app);
    const w1 = add('PUT', '/users/1');
    const w2 = add('PUT', '/users/1');
    const w3 = add('PUT', '/users/1');
    // A serial chain: the parked ones leave behind the op they waited for.
    app.leave([w1, w2]);
    expect([w1.parked, w2.parked]).toEqual([false, false]);
    app.finish(w1);
    expect(open(app)).toEqual([]);
    expect(queued(app)).toEqual([w3]);
    expect(app.requeue(w2, { notBefore: 50, refundAttempt: false })).toBe(true);
    expect(w2.notBefore).toBe(50);
    expect(open(app)).toEqual([w2]);
    expect(queued(app)).toEqual([w2, w3]);
  });

  it('answers an op only once, with every waiter it had', () => {
    const app = new AppState('a');
    const add = adder(app);
    const r = add('GET', '/users/1');
    const first = waiter();
    const joined = waiter();
    r.waiters.push(first, joined);
    expect(app.finish(r)).toEqual([first, joined]);
    expect(r.waiters).toEqual([]);
    expect(r.state).toBe('done');
    expect(app.finish(r)).toEqual([]);
    expect(app.counts).toEqual({ queued: 0, inflight: 0 });
  });
});

describe('AppState: moves', () => {
  it('requeues only an op in flight', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('PUT', '/users/1');
    expect(app.requeue(a, { notBefore: 70, refundAttempt: false })).toBe(false);
    expect(a.notBefore).toBe(0);
    expect(app.counts).toEqual({ queued: 1, inflight: 0 });
    app.leave([a]);
    app.finish(a);
    expect(app.requeue(a, { notBefore: 70, refundAttempt: false })).toBe(false);
    expect(a).toMatchObject({ state: 'done', notBefore: 0 });
    expect(app.counts).toEqual({ queued: 0, inflight: 0 });
  });

  it('refuses to send an op twice or after its answer', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('PUT', '/users/1');
    app.leave([a]);
    expect(() => app.leave([a])).toThrow('no move from inflight to inflight');
    app.finish(a);
    expect(() => app.leave([a])).toThrow('no move from done to inflight');
    expect(app.counts).toEqual({ queued: 0, inflight: 0 });
    expect(a.attempts).toBe(1);
  });

  it('counts each state and drops a group once nothing of it is queued', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('PUT', '/users/1', { credential: 'k1' });
    const b = add('PUT', '/users/2', { credential: 'k2' });
    expect(app.isIdle).toBe(false);
    expect([...app.groups.keys()]).toEqual(['k1', 'k2']);
    expect(app.recount()).toEqual({ queued: 2, inflight: 0 });
    app.leave([a]);
    expect(app.counts).toEqual({ queued: 1, inflight: 1 });
    expect(app.recount()).toEqual({ queued: 1, inflight: 1 });
    expect([...app.groups.keys()]).toEqual(['k2']);
    expect(app.flying()).toEqual([a]);
    app.requeue(a, { notBefore: 0, refundAttempt: false });
    expect([...app.groups.keys()]).toEqual(['k2', 'k1']);
    expect(app.counts).toEqual({ queued: 2, inflight: 0 });
    app.finish(a);
    app.finish(b);
    expect(app.groups.size).toBe(0);
    expect(app.isIdle).toBe(true);
    expect(app.counts).toEqual(app.recount());
  });
});

describe('AppState.oldestQueuedAt', () => {
  // Ops arrive in seq order, each at the engine's clock: arrival order is enqueuedAt order.
  it('is the arrival of the oldest op still queued, over every group; a requeued op counts again', () => {
    const app = new AppState('a');
    const add = adder(app);
    expect(app.oldestQueuedAt()).toBeUndefined();
    const a = add('PUT', '/users/1', { credential: 'k1', at: 200 });
    const b = add('PUT', '/users/2', { credential: 'k2', at: 250 });
    add('PUT', '/users/3', { credential: 'k1', at: 300 });
    expect(app.oldestQueuedAt()).toBe(200);
    app.leave([a]);
    expect(app.oldestQueuedAt()).toBe(250);
    app.leave([b]);
    expect(app.oldestQueuedAt()).toBe(300);
    // Back in the queue (a retry): the oldest again, ahead of later arrivals.
    app.requeue(a, { notBefore: 0, refundAttempt: false });
    expect(app.oldestQueuedAt()).toBe(200);
    app.finish(a);
    expect(app.oldestQueuedAt()).toBe(300);
  });
});

describe('AppState.joinable', () => {
  it('offers the queued read of a key until it leaves or a write to its resource arrives', () => {
    const app = new AppState('a');
    const add = adder(app);
    const r = add('GET', '/users/1', { readKey: 'x' });
    expect(app.joinable('x')).toBe(r);
    expect(app.joinable('y')).toBeUndefined();
    app.leave([r]);
    expect(app.joinable('x')).toBeUndefined();
    app.requeue(r, { notBefore: 0, refundAttempt: false });
    expect(app.joinable('x')).toBe(r);
    add('PUT', '/users/1');
    expect(app.joinable('x')).toBeUndefined();
  });

  it('leaves the key with the queued read that holds it when an older one is requeued and leaves again', () => {
    const app = new AppState('a');
    const add = adder(app);
    const older = add('GET', '/users/1', { readKey: 'x' });
    app.leave([older]);
    const newer = add('GET', '/users/1', { readKey: 'x' });
    expect(app.joinable('x')).toBe(newer);
    app.requeue(older, { notBefore: 0, refundAttempt: false });
    expect(app.joinable('x')).toBe(newer);
    app.leave([older]);
    expect(app.joinable('x')).toBe(newer);
  });

  it('offers the first read after a write, so reads that follow the write still collapse', () => {
    const app = new AppState('a');
    const add = adder(app);
    const before = add('GET', '/users/1', { readKey: 'x' });
    add('PUT', '/users/1');
    expect(app.joinable('x')).toBeUndefined();
    // The newcomer could not join `before` (the write sits between them): it holds the key now.
    const after = add('GET', '/users/1', { readKey: 'x' });
    expect(app.joinable('x')).toBe(after);
    // `before` requeued (a 429) does not take the key back: nothing may join it.
    app.leave([before]);
    app.requeue(before, { notBefore: 0, refundAttempt: false });
    expect(app.joinable('x')).toBe(after);
    // Once `after` has left, the key is free for the next read (none joins the older one).
    app.leave([after]);
    expect(app.joinable('x')).toBeUndefined();
    const next = add('GET', '/users/1', { readKey: 'x' });
    expect(app.joinable('x')).toBe(next);
  });
});

describe('AppState: one owner per op', () => {
  it('requeues with the attempt refunded or not, a cap and suspicion as told', () => {
    const app = new AppState('a');
    const add = adder(app);
    const a = add('PUT', '/users/u1');
    const b = add('PUT', '/users/u2');
    app.leave([a, b]);
    expect([a.attempts, b.attempts]).toEqual([1, 1]);
    app.requeue(a, { notBefore: 30, refundAttempt: true, cap: 2, suspect: true });
    app.requeue(b, { notBefore: 0, refundAttempt: false });
    expect([a.attempts, a.notBefore, a.batchCap, a.suspect]).toEqual([0, 30, 2, true]);
    expect([b.attempts, b.notBefore, b.batchCap, b.suspect]).toEqual([1, 0, Number.POSITIVE_INFINITY, false]);
  });

  it('joins a waiter, and says what dropping one left', () => {
    const app = new AppState('a');
    const op = adder(app)('GET', '/users/u1');
    const [first, second] = [waiter(), waiter()];
    op.waiters = [first];
    app.join(op, second);
    expect(op.waiters).toEqual([first, second]);
    expect(app.dropWaiter(op, waiter())).toBe('not-waiting');
    expect(app.dropWaiter(op, first)).toBe('others-wait');
    expect(app.dropWaiter(op, second)).toBe('nobody-waits');
    expect(op.waiters).toEqual([]);
    app.join(op, first);
    app.leave([op]);
    // Sent: the caller's answer will find nobody, the op keeps it.
    expect(app.dropWaiter(op, first)).toBe('not-waiting');
    expect(op.waiters).toEqual([first]);
  });

  it('marks the queued ops of failed resources suspect; a write among them rides alone', () => {
    const app = new AppState('a');
    const add = adder(app);
    const read = add('GET', '/users/u1');
    const write = add('PUT', '/users/u2');
    const post = pendingOp({ seq: 99, method: 'POST', path: '/users/u2/messages', deadline: 10_000 });
    app.add(post);
    const other = add('PUT', '/users/u3');
    app.markSuspect(new Set([read.resource, write.resource, post.resource]));
    expect([read, write, post, other].map((op) => [op.suspect, op.batchCap])).toEqual([
      [true, Number.POSITIVE_INFINITY],
      [true, Number.POSITIVE_INFINITY],
      [true, 1],
      [false, Number.POSITIVE_INFINITY],
    ]);
  });
});

describe('AppState: an isolated credential orders its own ops', () => {
  it('blocks an isolated op behind its own credential’s earlier isolated op, unless that op is in its chain', () => {
    const app = new AppState('a');
    const isolated = (seq: number, method: 'GET' | 'PUT', path: string, credential: string): PendingOp => {
      const op = pendingOp({ seq, method, path, credential, isolated: true, deadline: 10_000 });
      app.add(op);
      return op;
    };
    const first = isolated(1, 'PUT', '/users/u1', 'forged');
    const second = isolated(2, 'PUT', '/users/u1', 'forged');
    const other = isolated(3, 'PUT', '/users/u1', 'another');
    expect(app.isBlocked(second)).toBe(true);
    expect(app.isBlockedOutside(second, new Set())).toBe(true);
    expect(app.isBlockedOutside(second, new Set([first]))).toBe(false);
    // Another unaccepted credential is ordered apart: nothing of `forged` holds it.
    expect(app.isBlocked(other)).toBe(false);
    expect(app.isBlockedOutside(other, new Set())).toBe(false);
  });
});
