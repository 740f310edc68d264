// The queued ops of one (app, credential) group, in arrival order. Ops leave from anywhere (a blocked
// op may be passed over), so leaving is a state change and the lists are trimmed lazily from the
// front. Two lists: every queued op (deadlines, the oldest op), and the open ones — not parked behind
// an earlier op on their resource — which are all the planner looks at.

import type { PendingOp } from './op.js';
import { NORMAL } from './priority.js';

/** Ops in arrival (seq) order; entries that are no longer wanted are skipped and trimmed lazily. */
export class SeqList {
  #ops: PendingOp[] = [];
  #head = 0;

  constructor(private readonly wanted: (op: PendingOp) => boolean) {}

  push(op: PendingOp): void {
    this.#ops.push(op);
  }

  /** Puts an op back where its arrival order says (unless it is still there from before). */
  insert(op: PendingOp): void {
    let lo = this.#head;
    let hi = this.#ops.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ops[mid]?.seq ?? 0) < op.seq) lo = mid + 1;
      else hi = mid;
    }
    if (this.#ops[lo] !== op) this.#ops.splice(lo, 0, op);
  }

  front(): PendingOp | undefined {
    while (this.#head < this.#ops.length && !this.wanted(this.#ops[this.#head] as PendingOp)) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#ops.length) {
      this.#ops = this.#ops.slice(this.#head);
      this.#head = 0;
    }
    return this.#ops[this.#head];
  }

  // A plain iterator, not a generator: the planner walks these lists on every pass of the pump (each
  // arrival and answer), and a generator costs an object per walk and per step.
  [Symbol.iterator](): Iterator<PendingOp> {
    this.front();
    return new Walk(this.#ops, this.#head, this.wanted);
  }
}

class Walk implements Iterator<PendingOp> {
  readonly #result: { done: boolean; value: PendingOp | undefined } = { done: false, value: undefined };

  constructor(
    private readonly ops: readonly PendingOp[],
    private i: number,
    private readonly wanted: (op: PendingOp) => boolean,
  ) {}

  next(): IteratorResult<PendingOp> {
    const r = this.#result;
    while (this.i < this.ops.length) {
      const op = this.ops[this.i++] as PendingOp;
      if (this.wanted(op)) {
        r.value = op;
        return r as IteratorResult<PendingOp>;
      }
    }
    r.done = true;
    r.value = undefined;
    return r as IteratorResult<PendingOp>;
  }
}

export class GroupQueue {
  readonly #all = new SeqList((op) => op.state === 'queued');
  readonly #open = new SeqList((op) => op.state === 'queued' && !op.parked);
  /** Queued ops with their caller's own deadline: arrival order does not order theirs (op.ts). */
  readonly #hurried = new SeqList((op) => op.state === 'queued');
  /** Queued ops of a priority other than normal: while none, the planner reads arrival order only. */
  readonly #ranked = new SeqList((op) => op.state === 'queued');

  /**
   * The app's turn at which this group last sent (or joined): when tokens are scarce, the group that
   * waited longest for its turn goes first (round-robin between groups, SPEC §8d fair service).
   */
  servedAt: number;

  constructor(
    readonly credential: string,
    turn = 0,
  ) {
    this.servedAt = turn;
  }

  /** A new op (the newest); a parked one is left out of the open list until unparked. */
  push(op: PendingOp): void {
    this.#all.push(op);
    if (!op.parked) this.#open.push(op);
    if (op.hurried) this.#hurried.push(op);
    if (op.rank !== NORMAL) this.#ranked.push(op);
  }

  /** Puts an op back (a 429 or a retry) where its arrival order says, ahead of later arrivals. */
  requeue(op: PendingOp): void {
    this.#all.insert(op);
    this.#open.insert(op);
    if (op.hurried) this.#hurried.insert(op);
    if (op.rank !== NORMAL) this.#ranked.insert(op);
  }

  /** The op an earlier one was holding back may now be looked at. */
  unpark(op: PendingOp): void {
    this.#open.insert(op);
  }

  /** The oldest op still queued. */
  front(): PendingOp | undefined {
    return this.#all.front();
  }

  /** Queued ops in arrival order. */
  queued(): Iterable<PendingOp> {
    return this.#all;
  }

  /** Whether any queued op has a priority other than normal (the planner then ranks the group's). */
  get hasRanked(): boolean {
    return this.#ranked.front() !== undefined;
  }

  /** Whether any queued op has its caller's own deadline (the planner's walk is skipped if not). */
  get hasHurried(): boolean {
    return this.#hurried.front() !== undefined;
  }

  /** Queued ops with their caller's own deadline, in arrival order. */
  hurried(): Iterable<PendingOp> {
    return this.#hurried;
  }

  /** Queued ops not parked, in arrival order. */
  open(): Iterable<PendingOp> {
    return this.#open;
  }

  get isEmpty(): boolean {
    return this.front() === undefined;
  }
}
