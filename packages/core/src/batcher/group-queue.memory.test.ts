// The queue trims departed ops lazily: once most of its list has left, it lets go of them, so a
// long-lived group (one credential, busy for days) does not keep every op it ever carried.
//
// "Lets go" is observed as the garbage collector sees it: a departed op the test no longer holds
// is collected after a full collection, which it cannot be while the queue's list still refers
// to it. The collector is exposed for this test alone (V8's --expose-gc, in a fresh context).

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { GroupQueue } from './group-queue.js';
import type { PendingOp } from './op.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A macrotask, then a full collection: a WeakRef's target is kept until its creating job ends. */
async function collect(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
}

/** 3000 ops pushed, the first 2500 answered; returns the queue and weak refs to the answered ones. */
function queueWithDeparted(): { q: GroupQueue; departed: WeakRef<PendingOp>[]; kept: PendingOp[] } {
  const q = new GroupQueue('k');
  const departed: WeakRef<PendingOp>[] = [];
  const kept: PendingOp[] = [];
  for (let seq = 0; seq < 3000; seq++) {
    const op = pendingOp({ seq, method: 'GET', path: `/users/u${seq}` });
    q.push(op);
    if (seq < 2500) {
      op.state = 'done';
      departed.push(new WeakRef(op));
    } else kept.push(op);
  }
  return { q, departed, kept };
}

describe('GroupQueue memory', () => {
  it('lets go of the ops that left once most of its list has left', async () => {
    const { q, departed, kept } = queueWithDeparted();
    // Both lists look: every queued op, and the open ones.
    expect(q.front()).toBe(kept[0]);
    expect([...q.open()]).toEqual(kept);
    await collect();
    expect(departed.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    // What is still queued is all there, in order.
    expect([...q.queued()]).toEqual(kept);
  });

  it('holds departed ops until something looks at the queue (the trim is lazy)', async () => {
    const { q, departed } = queueWithDeparted();
    await collect();
    // Nothing has looked yet: the list still holds them, which is what makes the test above mean something.
    expect(departed.filter((ref) => ref.deref() !== undefined)).toHaveLength(2500);
    expect(q.front()?.seq).toBe(2500);
  });
});
