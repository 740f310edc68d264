// The queued ops of one (app, credential) group, in arrival order. Ops leave from anywhere (a blocked
// op may be passed over), so leaving is a state change and the array is trimmed lazily from the front.

import type { PendingOp } from './op.js';

export class GroupQueue {
  #ops: PendingOp[] = [];
  #head = 0;

  constructor(readonly credential: string) {}

  push(op: PendingOp): void {
    this.#ops.push(op);
  }

  /** Puts an op back (a 429 or a retry) where its arrival order says, ahead of later arrivals. */
  requeue(op: PendingOp): void {
    let lo = this.#head;
    let hi = this.#ops.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ops[mid]?.seq ?? 0) < op.seq) lo = mid + 1;
      else hi = mid;
    }
    // Still here from before it left (the array is trimmed lazily)? Then its state alone brings it back.
    if (this.#ops[lo] !== op) this.#ops.splice(lo, 0, op);
  }

  /** The oldest op still queued, after dropping those that left. */
  front(): PendingOp | undefined {
    while (this.#head < this.#ops.length && this.#ops[this.#head]?.state !== 'queued') this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#ops.length) {
      this.#ops = this.#ops.slice(this.#head);
      this.#head = 0;
    }
    return this.#ops[this.#head];
  }

  /** Queued ops in arrival order. */
  *queued(): Generator<PendingOp> {
    for (let i = this.#head; i < this.#ops.length; i++) {
      const op = this.#ops[i];
      if (op?.state === 'queued') yield op;
    }
  }

  get isEmpty(): boolean {
    return this.front() === undefined;
  }
}
