// One app's ops: its groups (one per credential), the ordering index, the collapsible reads and the
// counts. An op's state moves here only, through one explicit state machine, so the counts are kept in
// one place and adding a state touches this file alone. Its other fields after arrival (attempts,
// batch cap, suspicion, waiters) are written here too: what an outcome means for an op is decided
// elsewhere (answer.ts), what it does to the op here.
//
//            add                leave               finish
//   (new) ───────▶ queued ─────────────▶ inflight ─────────▶ done
//                    │   ◀───────────────    │
//                    │        requeue        │
//                    └──────────finish───────┘

import { GroupQueue, SeqList } from './group-queue.js';
import type { OpState, PendingOp, Waiter } from './op.js';
import { ResourceIndex } from './resources.js';

const MOVES: Readonly<Record<OpState, readonly OpState[]>> = {
  queued: ['inflight', 'done'],
  inflight: ['queued', 'done'],
  done: [],
};

/** How an op in flight goes back to its queue. */
export interface Requeue {
  /** Not sent again before this time (a retry's back-off; 0: at once). */
  readonly notBefore: number;
  /** Nothing of it ran (a 429, a batch refused or split as a whole): the attempt does not count. */
  readonly refundAttempt: boolean;
  /** The most ops its next batch may hold (halved each time a batch with it failed as a whole). */
  readonly cap?: number;
  /** It was in a batch that failed as a whole (SPEC §8d): it rides with no write it could cost. */
  readonly suspect?: boolean;
}

/** What dropping a waiter left: the op still has callers, or none (answer it), or it was not waiting. */
export type Dropped = 'others-wait' | 'nobody-waits' | 'not-waiting';

export interface Counts {
  readonly queued: number;
  readonly inflight: number;
}

/** Ops ordered together: their resource index, and the newest unanswered op and write per resource. */
class Namespace {
  readonly index = new ResourceIndex();
  /** A newcomer parks behind these (see `AppState.add`). */
  readonly lastOp = new Map<string, PendingOp>();
  readonly lastWrite = new Map<string, PendingOp>();
}

export class AppState {
  readonly groups = new Map<string, GroupQueue>();
  /** Ops of credentials the upstream has accepted, ordered across credentials. */
  readonly #shared = new Namespace();
  /**
   * Per credential not (yet) accepted, its isolated ops (SPEC §8d): a forged token's writes never
   * make another caller wait. Gone with the credential's last unanswered isolated op.
   */
  readonly #isolated = new Map<string, Namespace>();
  /** The newest queued (not in flight) read of each collapse key. */
  readonly #reads = new Map<string, PendingOp>();
  readonly #flying = new Set<PendingOp>();
  /** Every queued op in arrival order, over all groups: the oldest in O(1), whatever the groups. */
  readonly #arrivals = new SeqList((op) => op.state === 'queued');
  #queued = 0;
  #inflight = 0;
  /** Upstream calls sent so far, twice: the groups' turns (GroupQueue.servedAt). */
  #turn = 0;
  /** The credential served last: its group, emptied by that call and made anew, keeps its turn. */
  #servedLast: string | undefined;

  constructor(readonly appId: string) {}

  get counts(): Counts {
    return { queued: this.#queued, inflight: this.#inflight };
  }

  /** Nothing queued or in flight: the state equals a fresh one. */
  get isIdle(): boolean {
    return this.#queued === 0 && this.#inflight === 0;
  }

  /** The index of the ops ordered across credentials (tests). */
  get index(): ResourceIndex {
    return this.#shared.index;
  }

  /**
   * Whether a credential still has unanswered isolated ops: its next op is isolated too, whatever
   * the upstream said since, or it could overtake them.
   */
  hasIsolated(credential: string): boolean {
    return this.#isolated.has(credential);
  }

  /**
   * True when an earlier unanswered op conflicts with `op` (resources.ts): an op of an accepted
   * credential looks at the shared index only; an isolated op at its own credential's and the shared.
   */
  isBlocked(op: PendingOp): boolean {
    if (op.isolated && this.#isolated.get(op.credential)?.index.isBlocked(op)) return true;
    return this.#shared.index.isBlocked(op);
  }

  /** `ResourceIndex.isBlockedOutside` over the indexes `isBlocked` reads. */
  isBlockedOutside(op: PendingOp, chain: ReadonlySet<PendingOp>): boolean {
    if (op.isolated && this.#isolated.get(op.credential)?.index.isBlockedOutside(op, chain)) return true;
    return this.#shared.index.isBlockedOutside(op, chain);
  }

  /** A queued read `readKey` a newcomer may join: none once a write to its resource came after it. */
  joinable(readKey: string): PendingOp | undefined {
    const existing = this.#reads.get(readKey);
    if (existing?.state !== 'queued' || this.#shared.index.hasLaterWrite(existing)) return undefined;
    // A later write of the same credential may be isolated though this read is not (its credential
    // was forgotten as accepted in between): the newcomer must see that write too.
    if (this.#isolated.get(existing.credential)?.index.hasLaterWrite(existing)) return undefined;
    return existing;
  }

  /**
   * A new op, the newest of the app. It parks behind the newest unanswered op on its resource that it
   * conflicts with (it cannot leave before that one's answer), so a backlog of writes to one hot
   * resource costs the planner one look per answer, not one per queued op.
   */
  add(op: PendingOp): void {
    op.state = 'queued';
    const ns = this.#namespace(op);
    const before = op.isWrite ? ns.lastOp.get(op.resource) : ns.lastWrite.get(op.resource);
    ns.lastOp.set(op.resource, op);
    if (op.isWrite) ns.lastWrite.set(op.resource, op);
    if (before && before.state !== 'done') {
      op.parked = true;
      before.dependents.push(op);
    }
    ns.index.add(op);
    this.#arrivals.push(op);
    this.#group(op.credential).push(op);
    this.#enter(op, 'queued');
  }

  /**
   * Ops leave in an upstream call. A parked op leaves only inside a serial chain behind the op it
   * waited for: it waits no longer (if it comes back, it is open at once; its blocker's answer, which
   * would have unparked it, may come while it flies).
   */
  leave(ops: readonly PendingOp[]): void {
    for (const op of ops) {
      op.parked = false;
      this.#move(op, 'inflight');
    }
  }

  /** Upstream calls sent so far (priority.ts: which class this grant prefers). */
  get grants(): number {
    return this.#turn / 2;
  }

  /** The group of `credential` sent a call: it goes to the back of the round. */
  served(credential: string): void {
    // In steps of 2: a group new to the queue joins just ahead of the one served last (`#group`).
    this.#turn += 2;
    this.#servedLast = credential;
    const group = this.groups.get(credential);
    if (group) group.servedAt = this.#turn;
  }

  /** An op in flight goes back to its queue (a 429, a split, or a retry not before `notBefore`). */
  requeue(op: PendingOp, how: Requeue): boolean {
    if (op.state !== 'inflight') return false; // answered meanwhile (abandoned at shutdown)
    op.notBefore = how.notBefore;
    if (how.refundAttempt) op.attempts--;
    if (how.cap !== undefined) op.batchCap = how.cap;
    if (how.suspect) op.suspect = true;
    this.#move(op, 'queued');
    this.#arrivals.insert(op);
    this.#group(op.credential).requeue(op);
    return true;
  }

  /** A caller joins a queued op (an identical read, collapsed). */
  join(op: PendingOp, waiter: Waiter): void {
    op.waiters.push(waiter);
  }

  /** A caller of a queued op went away; once sent, its answer simply finds nobody. */
  dropWaiter(op: PendingOp, waiter: Waiter): Dropped {
    if (op.state !== 'queued') return 'not-waiting';
    const i = op.waiters.indexOf(waiter);
    if (i === -1) return 'not-waiting';
    op.waiters.splice(i, 1);
    return op.waiters.length === 0 ? 'nobody-waits' : 'others-wait';
  }

  /**
   * The resources failed a batch as a whole (SPEC §8d): their queued ops turn suspect, and a write
   * among them, which may not be sent twice, rides alone.
   */
  markSuspect(resources: ReadonlySet<string>): void {
    for (const op of this.queuedOps()) {
      if (op.suspect || !resources.has(op.resource)) continue;
      op.suspect = true;
      if (!op.retrySafe) op.batchCap = 1;
    }
  }

  /** The op is answered: returns its waiters (none when it was already answered). */
  finish(op: PendingOp): Waiter[] {
    if (op.state === 'done') return [];
    this.#move(op, 'done');
    const waiters = op.waiters;
    op.waiters = [];
    return waiters;
  }

  /** Every op in flight. */
  flying(): PendingOp[] {
    return [...this.#flying];
  }

  /** Every op queued, in each group's arrival order. */
  queuedOps(): PendingOp[] {
    return [...this.groups.values()].flatMap((g) => [...g.queued()]);
  }

  /** When the oldest queued op arrived, if any. */
  oldestQueuedAt(): number | undefined {
    return this.#arrivals.front()?.enqueuedAt;
  }

  /** The counts from scratch (tests: they must equal `counts`). */
  recount(): Counts {
    return { queued: this.queuedOps().length, inflight: this.#flying.size };
  }

  #move(op: PendingOp, to: OpState): void {
    const from = op.state;
    if (!MOVES[from].includes(to)) throw new Error(`op ${op.seq}: no move from ${from} to ${to}`);
    this.#exit(op, from);
    op.state = to;
    this.#enter(op, to);
    if (from === 'queued' && this.groups.get(op.credential)?.isEmpty) this.groups.delete(op.credential);
  }

  #enter(op: PendingOp, state: OpState): void {
    switch (state) {
      case 'queued':
        this.#queued++;
        if (op.readKey !== undefined) {
          // The newest queued read holds its key: a newcomer that could not join an older one (a
          // write came between them) is the one later reads may join; a requeued older one is not.
          const holder = this.#reads.get(op.readKey);
          if (!holder || holder.seq < op.seq) this.#reads.set(op.readKey, op);
        }
        return;
      case 'inflight':
        this.#inflight++;
        op.attempts++;
        this.#flying.add(op);
        return;
      case 'done':
        this.#answered(op);
        return;
    }
  }

  #exit(op: PendingOp, state: OpState): void {
    switch (state) {
      case 'queued': {
        this.#queued--;
        if (op.readKey !== undefined && this.#reads.get(op.readKey) === op) this.#reads.delete(op.readKey);
        return;
      }
      case 'inflight':
        this.#inflight--;
        this.#flying.delete(op);
        return;
      case 'done':
        return;
    }
  }

  /** Out of the index; the ops parked behind it may now be looked at. */
  #answered(op: PendingOp): void {
    const ns = op.isolated ? this.#isolated.get(op.credential) : this.#shared;
    if (ns) {
      ns.index.delete(op);
      if (ns.lastOp.get(op.resource) === op) ns.lastOp.delete(op.resource);
      if (ns.lastWrite.get(op.resource) === op) ns.lastWrite.delete(op.resource);
      if (op.isolated && ns.index.size === 0) this.#isolated.delete(op.credential);
    }
    for (const dependent of op.dependents) {
      if (dependent.state !== 'queued' || !dependent.parked) continue;
      dependent.parked = false;
      this.#group(dependent.credential).unpark(dependent);
    }
    op.dependents = [];
  }

  /** Where `op` is ordered (an isolated op's namespace is made if need be). */
  #namespace(op: PendingOp): Namespace {
    if (!op.isolated) return this.#shared;
    let ns = this.#isolated.get(op.credential);
    if (!ns) {
      ns = new Namespace();
      this.#isolated.set(op.credential, ns);
    }
    return ns;
  }

  #group(credential: string): GroupQueue {
    let group = this.groups.get(credential);
    if (!group) {
      // A group new to the queue joins the round at its back, but ahead of the group served last:
      // that one has just had its turn.
      group = new GroupQueue(credential, credential === this.#servedLast ? this.#turn : this.#turn - 1);
      this.groups.set(credential, group);
    }
    return group;
  }
}
