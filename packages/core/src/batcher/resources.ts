// Which unanswered ops touch the same resource, so packing can keep arrival order (SPEC §5).
// Two ops conflict when one path is a segment-prefix of the other (or they are equal) and at least
// one is a write. An op may leave only when no earlier unanswered op conflicts with it; that one rule
// keeps conflicting ops out of a shared batch and orders them across batches, lanes and credentials.

import type { PendingOp } from './op.js';

/** `/conversations/c1/messages` → `['/conversations', '/conversations/c1', '/conversations/c1/messages']`. */
export function pathPrefixes(path: string): string[] {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const prefixes: string[] = [];
  let i = trimmed.indexOf('/', 1);
  while (i !== -1) {
    prefixes.push(trimmed.slice(0, i));
    i = trimmed.indexOf('/', i + 1);
  }
  prefixes.push(trimmed);
  return prefixes;
}

/** The path ordering compares: the path without a trailing slash. */
export function resourceOf(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * The ops under each key, oldest first. Most keys (an op's own path) hold one op at a time: it is kept
 * as itself, and a Set is made only when a second op joins it — an op then costs no Set of its own.
 */
type Members = PendingOp | Set<PendingOp>;
type Index = Map<string, Members>;

function add(index: Index, key: string, op: PendingOp): void {
  const members = index.get(key);
  if (members === undefined) index.set(key, op);
  else if (members instanceof Set) members.add(op);
  else if (members !== op) index.set(key, new Set([members, op]));
}

function remove(index: Index, key: string, op: PendingOp): void {
  const members = index.get(key);
  if (members === op) index.delete(key);
  else if (members instanceof Set) {
    members.delete(op);
    if (members.size === 0) index.delete(key);
  }
}

/** True when `members` holds an op that arrived before `seq`. Sets keep insertion (= arrival) order. */
function hasEarlier(members: Members | undefined, seq: number): boolean {
  if (members === undefined) return false;
  if (!(members instanceof Set)) return members.seq < seq;
  for (const other of members) return other.seq < seq;
  return false;
}

function hasLater(members: Members | undefined, seq: number): boolean {
  if (members === undefined) return false;
  if (!(members instanceof Set)) return members.seq > seq;
  for (const other of members) if (other.seq > seq) return true;
  return false;
}

/** Unanswered ops of one app, indexed by resource. */
export class ResourceIndex {
  // exact: ops whose path equals the key; under: ops whose path equals or lies below the key.
  readonly #exactAll: Index = new Map();
  readonly #exactWrites: Index = new Map();
  readonly #underAll: Index = new Map();
  readonly #underWrites: Index = new Map();
  /** Each indexed op's path prefixes (its own path last): computed once, on add. */
  readonly #entries = new Map<PendingOp, string[]>();

  get size(): number {
    return this.#entries.size;
  }

  /** Ops must be added in arrival order (the sets' order is what `hasEarlier` reads). */
  add(op: PendingOp): void {
    // `resource`: the path as the dialect names the resource (Graph: `/me` resolved per caller).
    const prefixes = pathPrefixes(op.resource);
    this.#entries.set(op, prefixes);
    const path = prefixes[prefixes.length - 1] ?? op.op.path;
    add(this.#exactAll, path, op);
    if (op.isWrite) add(this.#exactWrites, path, op);
    for (const prefix of prefixes) {
      add(this.#underAll, prefix, op);
      if (op.isWrite) add(this.#underWrites, prefix, op);
    }
  }

  delete(op: PendingOp): void {
    const prefixes = this.#entries.get(op);
    if (!prefixes) return;
    this.#entries.delete(op);
    const path = prefixes[prefixes.length - 1] ?? op.op.path;
    remove(this.#exactAll, path, op);
    if (op.isWrite) remove(this.#exactWrites, path, op);
    for (const prefix of prefixes) {
      remove(this.#underAll, prefix, op);
      if (op.isWrite) remove(this.#underWrites, prefix, op);
    }
  }

  /** True when an earlier unanswered op conflicts with `op`, so `op` must wait for its answer. */
  isBlocked(op: PendingOp): boolean {
    const prefixes = this.#entries.get(op) ?? pathPrefixes(op.resource);
    const path = prefixes[prefixes.length - 1] ?? op.op.path;
    // A read waits only for writes; a write waits for everything on its resource.
    const under = op.isWrite ? this.#underAll : this.#underWrites;
    const exact = op.isWrite ? this.#exactAll : this.#exactWrites;
    if (hasEarlier(under.get(path), op.seq)) return true;
    for (let i = 0; i < prefixes.length - 1; i++) {
      if (hasEarlier(exact.get(prefixes[i] ?? ''), op.seq)) return true;
    }
    return false;
  }

  /**
   * True when an earlier unanswered op conflicting with `op` is not in `chain`: `op` may follow the
   * members of a serial chain in one batch (Graph dependsOn), never an op outside it.
   */
  isBlockedOutside(op: PendingOp, chain: ReadonlySet<PendingOp>): boolean {
    const prefixes = this.#entries.get(op) ?? pathPrefixes(op.resource);
    const path = prefixes[prefixes.length - 1] ?? op.op.path;
    const under = op.isWrite ? this.#underAll : this.#underWrites;
    const exact = op.isWrite ? this.#exactAll : this.#exactWrites;
    const outside = (members: Members | undefined) => {
      if (members === undefined) return false;
      if (!(members instanceof Set)) return members.seq < op.seq && !chain.has(members);
      for (const other of members) {
        if (other.seq >= op.seq) return false;
        if (!chain.has(other)) return true;
      }
      return false;
    };
    if (outside(under.get(path))) return true;
    for (let i = 0; i < prefixes.length - 1; i++) if (outside(exact.get(prefixes[i] ?? ''))) return true;
    return false;
  }

  /** True when a write that arrived after `read` touches its resource (it must not gain new joiners). */
  hasLaterWrite(read: PendingOp): boolean {
    const prefixes = this.#entries.get(read) ?? pathPrefixes(read.resource);
    const path = prefixes[prefixes.length - 1] ?? read.resource;
    if (hasLater(this.#underWrites.get(path), read.seq)) return true;
    for (let i = 0; i < prefixes.length - 1; i++) {
      if (hasLater(this.#exactWrites.get(prefixes[i] ?? ''), read.seq)) return true;
    }
    return false;
  }
}
