// Which ops leave next, and when to look again — pure: it reads an app's queues and what its budgets
// last said, and changes nothing.
//
//  1. Expire: a queued op past its deadline is answered 503 (it could not be sent in time).
//  2. Eligible: an op may leave only when no earlier unanswered op of the same app conflicts with it
//     (resources.ts). That one rule keeps arrival order per resource across batches, lanes and
//     credentials, and never puts two conflicting ops in one batch.
//  3. Ready: a group (app + credential) flushes when it has a full batch of eligible ops, or when its
//     oldest eligible op has waited the window plus the token-economy hold (`holdMs`).
//  4. Batch lane first, groups in turn (round-robin: the one served longest ago first, then the
//     oldest op): one batch token buys up to maxOps ops.
//  4b. Serial chains (dialects that can, Graph dependsOn): when conflicts leave a group's parallel
//     batch less than half full, its ops that wait only for each other leave as one serial chain in
//     arrival order instead (each runs after the previous one succeeded).
//  5. Single lane when the batch lane cannot serve soon enough: while the batch bucket is closed for
//     longer than a window and the rest bucket is open, the oldest eligible op leaves as a single call.

import type { AppState } from './app-state.js';
import type { PendingOp } from './op.js';
import { firstByRank, NORMAL, preferredRank, type Rank, rankOrder } from './priority.js';

export type FlushReason = 'full' | 'window' | 'hold' | 'drain';

export interface Flush {
  readonly credential: string;
  /** Eligible ops, oldest first, at most maxOps. */
  readonly ops: PendingOp[];
  readonly reason: FlushReason;
  /** `serial`: the ops form a chain (some wait for earlier ones in it); absent = parallel. */
  readonly plan?: 'serial';
}

export interface Plan {
  /** Queued ops past their deadline. */
  readonly expired: PendingOp[];
  /** Queued ops due no later than anything can leave (`PlanParams.closedUntil`): expired by then. */
  readonly doomed: PendingOp[];
  /** Groups ready to leave, oldest first. */
  readonly flushes: Flush[];
  /** When something changes by the clock alone (a window, a back-off, a deadline). */
  readonly wakeAt: number;
  /** The earliest deadline of a queued op not expired nor doomed (Infinity: none). */
  readonly nextDeadline: number;
}

export interface PlanParams {
  /** The instant windows and holds are judged at (default: now); see AppEngine's step. */
  readonly windowNow?: number;
  readonly windowMs: number;
  readonly maxOps: number;
  readonly draining: boolean;
  /** How much longer than the window a partial batch waits (`holdMs`). */
  readonly holdMs: number;
  /** A partial batch leaves at the latest this long before its oldest op's deadline. */
  readonly leadMs: number;
  /** The most bytes of op payloads in one batch (at least one op always goes). */
  readonly maxBytes?: number;
  /** Nothing can leave before this (a pause, an open breaker): ops due by then are doomed. */
  readonly closedUntil?: number;
  /** Serial chains may be built (the dialect can chain and they are wanted). */
  readonly chains?: boolean;
  /**
   * Until when a group sends nothing (its credential was throttled, SPEC §8d); 0 or absent: it may.
   * Its ops due by then are doomed; the other groups go on.
   */
  readonly pausedUntil?: (credential: string) => number;
  /**
   * The budget a group spends, when groups of the app spend different ones (SPEC §8d, budgets per
   * tenant): its `closedUntil`, `holdMs` and `leadMs` replace the app-wide ones for that group.
   */
  readonly limitsOf?: (credential: string) => GroupLimits;
}

/** What a group's budget says to the plan (PlanParams' `closedUntil`, `holdMs`, `leadMs`). */
export interface GroupLimits {
  readonly closedUntil: number;
  readonly holdMs: number;
  readonly leadMs: number;
}

export function plan(app: AppState, now: number, p: PlanParams): Plan {
  const expired: PendingOp[] = [];
  const doomed: PendingOp[] = [];
  const flushes: Flush[] = [];
  const turns = new Map<Flush, number>();
  /** Each flush's best priority, once a group has other than normal ones (else all are normal). */
  let ranks: Map<Flush, Rank> | undefined;
  const appLimits: GroupLimits = { closedUntil: p.closedUntil ?? 0, holdMs: p.holdMs, leadMs: p.leadMs };
  let wakeAt = Number.POSITIVE_INFINITY;
  let nextDeadline = Number.POSITIVE_INFINITY;
  for (const group of app.groups.values()) {
    const credential = group.credential;
    const { closedUntil, holdMs, leadMs } = p.limitsOf?.(credential) ?? appLimits;
    const paused = p.pausedUntil?.(credential) ?? 0;
    const groupClosedUntil = Math.max(closedUntil, paused);
    // Deadlines follow arrival order, so the late ops are at the front — except a caller's own
    // (hurried), which are few and each looked at.
    for (const op of group.queued()) {
      if (op.hurried) continue;
      if (op.deadline <= now) expired.push(op);
      else if (op.deadline <= groupClosedUntil) doomed.push(op);
      else {
        nextDeadline = Math.min(nextDeadline, op.deadline);
        break;
      }
    }
    if (group.hasHurried) {
      for (const op of group.hurried()) {
        if (op.deadline <= now) expired.push(op);
        else if (op.deadline <= groupClosedUntil) doomed.push(op);
        else nextDeadline = Math.min(nextDeadline, op.deadline);
      }
    }
    if (paused > now) {
      wakeAt = Math.min(wakeAt, paused);
      continue;
    }
    const liveAfter = Math.max(now, closedUntil);
    const ranked = group.hasRanked;
    const parallel = eligible(app, group.open(), now, liveAfter, p, ranked);
    const { backoffUntil } = parallel;
    let { ops, full } = parallel;
    let serial = false;
    if (p.chains && !full && ops.length * 2 < p.maxOps) {
      const chained = chain(app, group.queued(), now, liveAfter, p);
      if (chained.ops.length > ops.length) {
        ({ ops, full } = chained);
        serial = true;
      }
    }
    wakeAt = Math.min(wakeAt, backoffUntil);
    const oldest = ops[0];
    if (!oldest) continue;
    // The hold never keeps an op past the point where one more token interval would miss its deadline.
    const windowEnd = oldest.enqueuedAt + p.windowMs;
    const readyAt = Math.max(windowEnd, Math.min(windowEnd + holdMs, oldest.deadline - leadMs));
    let reason: FlushReason | undefined;
    if (p.draining) reason = 'drain';
    else if (full) reason = 'full';
    else if ((p.windowNow ?? now) >= readyAt) reason = readyAt > windowEnd ? 'hold' : 'window';
    if (reason) {
      const flush: Flush = serial ? { credential, ops, reason, plan: 'serial' } : { credential, ops, reason };
      flushes.push(flush);
      turns.set(flush, group.servedAt);
      if (ranked) {
        ranks ??= new Map();
        ranks.set(flush, bestRank(ops));
      }
    } else wakeAt = Math.min(wakeAt, readyAt);
  }
  // Round-robin between groups (SPEC §8d fair service): the group whose last turn is longest ago
  // first, so no group's backlog starves another; among equals, the oldest op first. With
  // priorities, the class this grant prefers first, then the others by rank (priority.ts).
  const byTurn = (a: Flush, b: Flush) =>
    (turns.get(a) ?? 0) - (turns.get(b) ?? 0) || (a.ops[0]?.seq ?? 0) - (b.ops[0]?.seq ?? 0);
  if (ranks) {
    const r = ranks;
    const preferred = preferredRank(app.grants);
    const order = (f: Flush) => rankOrder(r.get(f) ?? NORMAL, preferred);
    flushes.sort((a, b) => order(a) - order(b) || byTurn(a, b));
  } else flushes.sort(byTurn);
  return { expired, doomed, flushes, wakeAt: Math.min(wakeAt, nextDeadline), nextDeadline };
}

/**
 * A group's queued ops (parked ones included) that may leave now as one serial chain, oldest first:
 * each waits for no unanswered op outside the chain, and fits the same bounds as a parallel batch.
 */
function chain(
  app: AppState,
  queued: Iterable<PendingOp>,
  now: number,
  liveAfter: number,
  p: PlanParams,
): { ops: PendingOp[]; full: boolean } {
  const ops: PendingOp[] = [];
  const members = new Set<PendingOp>();
  const mix = new Mix();
  let limit = p.maxOps;
  let bytes = 0;
  for (const op of queued) {
    if (op.deadline <= liveAfter || op.notBefore > now) continue;
    if (app.isBlockedOutside(op, members)) continue;
    if (!mix.admits(op)) continue;
    const size = op.op.body?.length ?? 0;
    const cap = Math.min(limit, op.batchCap);
    if (ops.length >= cap || (ops.length > 0 && bytes + size > (p.maxBytes ?? Number.POSITIVE_INFINITY)))
      return { ops, full: true };
    ops.push(op);
    members.add(op);
    mix.add(op);
    limit = cap;
    bytes += size;
    if (ops.length >= limit) return { ops, full: true };
  }
  return { ops, full: false };
}

/**
 * A group's ops that may leave together now, oldest first: not doomed, not backing off, not behind
 * an earlier conflicting op; at most maxOps, at most each op's batch cap, at most maxBytes of
 * payload. `full`: the batch can take no more, so it need not wait for its window.
 */
function eligible(
  app: AppState,
  open: Iterable<PendingOp>,
  now: number,
  liveAfter: number,
  p: PlanParams,
  ranked = false,
): { ops: PendingOp[]; full: boolean; backoffUntil: number } {
  const ops: PendingOp[] = [];
  const mix = new Mix();
  let limit = p.maxOps;
  let bytes = 0;
  let backoffUntil = Number.POSITIVE_INFINITY;
  // Ranked: one walk per priority, high first (strict within a group), the batch then in arrival
  // order; the ordering rules hold as ever (an op behind an earlier conflicting one stays blocked,
  // whatever the two priorities).
  const done = (full: boolean) => {
    if (ranked) ops.sort((a, b) => a.seq - b.seq);
    return { ops, full, backoffUntil };
  };
  for (const rank of ranked ? RANKS : ANY_RANK) {
    for (const op of open) {
      if (rank !== undefined && op.rank !== rank) continue;
      if (op.deadline <= liveAfter) continue;
      if (op.notBefore > now) {
        backoffUntil = Math.min(backoffUntil, op.notBefore);
        continue;
      }
      if (app.isBlocked(op)) continue;
      if (!mix.admits(op)) continue;
      // An op that does not fit leads the next batch: this one is full.
      const size = op.op.body?.length ?? 0;
      const cap = Math.min(limit, op.batchCap);
      if (ops.length >= cap || (ops.length > 0 && bytes + size > (p.maxBytes ?? Number.POSITIVE_INFINITY)))
        return done(true);
      ops.push(op);
      mix.add(op);
      limit = cap;
      bytes += size;
      if (ops.length >= limit) return done(true);
    }
  }
  return done(false);
}

const RANKS: readonly Rank[] = [0, 1, 2];
const ANY_RANK: readonly (Rank | undefined)[] = [undefined];

/** A flush's class: its best op's priority. */
function bestRank(ops: readonly PendingOp[]): Rank {
  let best: Rank = 2;
  for (const op of ops) if (op.rank < best) best = op.rank;
  return best;
}

/**
 * SPEC §8d, a poisoned op travels alone: a batch that holds a suspect op (it, or its resource, was in
 * a batch that failed as a whole) holds no write that may not be sent twice, so a retry of the
 * suspects can never cost such a write its one attempt. A suspect write has a batch cap of 1.
 */
class Mix {
  #suspects = false;
  #once = false;

  admits(op: PendingOp): boolean {
    return op.suspect ? !this.#once : !(this.#suspects && !op.retrySafe);
  }

  add(op: PendingOp): void {
    if (op.suspect) this.#suspects = true;
    else if (!op.retrySafe) this.#once = true;
  }
}

/**
 * Token economy (SPEC §7b): how much longer than the window a partial batch waits, by the tokens
 * left in the batch bucket. None while at least a tenth of the burst is left (latency first); below
 * that, up to one token interval when the bucket is empty (throughput first). A burst under 10 has
 * no reserve to manage: the pacing itself makes batches fill.
 */
export function holdMs(tokensLeft: number, burst: number, intervalMs: number): number {
  const lowWater = Math.floor(burst / 10);
  if (lowWater === 0) return 0;
  const leftAfter = tokensLeft - 1;
  if (leftAfter >= lowWater) return 0;
  return intervalMs * (1 - Math.max(0, leftAfter) / lowWater);
}

export interface LaneView {
  readonly batchOpen: boolean;
  /** How long the batch bucket stays closed from now (≤ 0: open). */
  readonly batchClosedForMs: number;
  /** Whether a rest budget is configured, and whether it is open now. */
  readonly hasRest: boolean;
  readonly restOpen: boolean;
  readonly windowMs: number;
  /** A flush that would carry one op leaves as a single call instead (SINGLE_OP_DIRECT). */
  readonly singleOpDirect: boolean;
}

/** The next upstream call to try, and on which budget; or nothing to do until `plan.wakeAt`. */
export type Action =
  | { readonly kind: 'batch'; readonly flush: Flush }
  | { readonly kind: 'single'; readonly op: PendingOp; readonly budget: 'batch' | 'rest' }
  | { readonly kind: 'none' };

export function decide(flushes: readonly Flush[], lanes: LaneView): Action {
  const first = flushes[0];
  if (!first) return { kind: 'none' };
  if (lanes.batchOpen) {
    const only = first.ops.length === 1 ? first.ops[0] : undefined;
    if (lanes.singleOpDirect && only) {
      // A single call in place of a batch of one: paid from the rest budget when there is one (and
      // it is open), else from the batch budget it would have spent anyway.
      if (!lanes.hasRest) return { kind: 'single', op: only, budget: 'batch' };
      if (lanes.restOpen) return { kind: 'single', op: only, budget: 'rest' };
    }
    return { kind: 'batch', flush: first };
  }
  if (lanes.hasRest && lanes.restOpen && lanes.batchClosedForMs > lanes.windowMs) {
    // The group whose turn it is (flushes come in turn order, SPEC §8d), its oldest op of its best
    // priority: one group's backlog of old ops never takes the single-call lane from the others.
    const op = firstByRank(first.ops);
    if (op) return { kind: 'single', op, budget: 'rest' };
  }
  return { kind: 'none' };
}
