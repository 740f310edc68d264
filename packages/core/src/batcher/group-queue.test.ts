import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { GroupQueue } from './group-queue.js';
import type { PendingOp } from './op.js';

function op(seq: number): PendingOp {
  return pendingOp({ seq, method: 'GET', path: `/users/u${seq}` });
}

const seqs = (q: GroupQueue) => [...q.queued()].map((o) => o.seq);

describe('GroupQueue', () => {
  it('keeps arrival order and skips ops that left', () => {
    const q = new GroupQueue('k');
    const ops = [0, 1, 2, 3].map(op);
    for (const o of ops) q.push(o);
    expect(q.front()?.seq).toBe(0);
    (ops[1] as PendingOp).state = 'inflight';
    expect(seqs(q)).toEqual([0, 2, 3]);
    (ops[0] as PendingOp).state = 'done';
    expect(q.front()?.seq).toBe(2);
    expect(q.isEmpty).toBe(false);
    (ops[2] as PendingOp).state = 'done';
    (ops[3] as PendingOp).state = 'inflight';
    expect(q.front()).toBeUndefined();
    expect(q.isEmpty).toBe(true);
  });

  it('puts a re-queued op back ahead of later arrivals, once', () => {
    const q = new GroupQueue('k');
    const [a, b, c] = [0, 1, 2].map(op) as [PendingOp, PendingOp, PendingOp];
    q.push(a);
    q.push(b);
    q.push(c);
    a.state = 'inflight';
    b.state = 'inflight';
    expect(q.front()).toBe(c); // a and b trimmed from the front
    b.state = 'queued';
    q.requeue(b);
    a.state = 'queued';
    q.requeue(a);
    expect(seqs(q)).toEqual([0, 1, 2]);
    expect(q.front()).toBe(a);
  });

  it('does not duplicate a re-queued op still in place', () => {
    const q = new GroupQueue('k');
    const [a, b, c] = [0, 1, 2].map(op) as [PendingOp, PendingOp, PendingOp];
    q.push(a);
    q.push(b);
    q.push(c);
    b.state = 'inflight'; // left from the middle: the front never moved past it
    b.state = 'queued';
    q.requeue(b);
    expect(seqs(q)).toEqual([0, 1, 2]);
  });

  it('does not duplicate the front op re-queued still in place, before anything looked at the queue', () => {
    const q = new GroupQueue('k');
    const [a, b] = [0, 1].map(op) as [PendingOp, PendingOp];
    q.push(a);
    q.push(b);
    a.state = 'inflight';
    a.state = 'queued';
    q.requeue(a);
    expect(seqs(q)).toEqual([0, 1]);
    expect([...q.open()].map((o) => o.seq)).toEqual([0, 1]);
  });

  it('re-queues between later ops in seq order', () => {
    const q = new GroupQueue('k');
    const ops = [0, 1, 2, 3, 4].map(op);
    for (const o of ops) q.push(o);
    const [, one, , three] = ops as [PendingOp, PendingOp, PendingOp, PendingOp, PendingOp];
    // Trim 0 and 1 off the front, then bring 1 back with 3 gone too.
    (ops[0] as PendingOp).state = 'done';
    one.state = 'inflight';
    three.state = 'inflight';
    expect(q.front()?.seq).toBe(2);
    three.state = 'queued';
    q.requeue(three);
    one.state = 'queued';
    q.requeue(one);
    expect(seqs(q)).toEqual([1, 2, 3, 4]);
  });

  it('drops a long run of departed ops from its memory and keeps order', () => {
    const q = new GroupQueue('k');
    const ops = Array.from({ length: 3000 }, (_, i) => op(i));
    for (const o of ops) q.push(o);
    for (const o of ops.slice(0, 2500)) o.state = 'done';
    expect(q.front()?.seq).toBe(2500);
    const late = ops[2999] as PendingOp;
    late.state = 'inflight';
    late.state = 'queued';
    q.requeue(late);
    expect(seqs(q)).toEqual(ops.slice(2500).map((o) => o.seq));
    const back = ops[2400] as PendingOp;
    back.state = 'queued';
    q.requeue(back);
    expect(seqs(q)[0]).toBe(2400);
    expect(q.front()).toBe(back);
  });

  it('keeps a parked op out of the open list until it is unparked, in arrival order', () => {
    const q = new GroupQueue('k');
    const [a, b, c] = [0, 1, 2].map(op) as [PendingOp, PendingOp, PendingOp];
    b.parked = true;
    for (const o of [a, b, c]) q.push(o);
    expect([...q.open()].map((o) => o.seq)).toEqual([0, 2]);
    expect(seqs(q)).toEqual([0, 1, 2]);
    a.state = 'done';
    b.parked = false;
    q.unpark(b);
    expect([...q.open()].map((o) => o.seq)).toEqual([1, 2]);
  });

  it("keeps the ops with their caller's own deadline apart, in arrival order, re-queued once", () => {
    const q = new GroupQueue('k');
    const [a, b, c] = [0, 1, 2].map((seq) =>
      pendingOp({ seq, method: 'GET', path: `/users/u${seq}`, hurried: seq !== 1 }),
    ) as [PendingOp, PendingOp, PendingOp];
    expect(q.hasHurried).toBe(false);
    q.push(a);
    q.push(b);
    q.push(c);
    expect(q.hasHurried).toBe(true);
    expect([...q.hurried()].map((o) => o.seq)).toEqual([0, 2]);
    a.state = 'inflight';
    expect([...q.hurried()].map((o) => o.seq)).toEqual([2]);
    a.state = 'queued';
    q.requeue(a);
    q.requeue(a);
    expect([...q.hurried()].map((o) => o.seq)).toEqual([0, 2]);
    // A plain op re-queued stays out of the list.
    q.requeue(b);
    expect([...q.hurried()].map((o) => o.seq)).toEqual([0, 2]);
    a.state = 'done';
    c.state = 'done';
    expect(q.hasHurried).toBe(false);
  });
});
