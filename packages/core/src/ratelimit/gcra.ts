// GCRA arithmetic, pure. The in-process limiter calls it; scripts/*.lua are the same arithmetic run
// inside Redis (keep the two in step; redis.test.ts runs both against the same cases).

import type { BucketLimit, Decision, Grant } from './limiter.js';

/**
 * One bucket: its TAT (theoretical arrival time of the next call; -Infinity = full), how many leased
 * grants are flying (not settled yet), and, once a grant emptied the bucket, the time until which it
 * stays closed while any of them is unanswered (0: not held). See Grant in limiter.ts.
 */
export interface BucketState {
  readonly tat: number;
  readonly flying: number;
  readonly hold: number;
}

/** Sums of instants and intervals carry rounding of ~1e-13 ms; a comparison within this is equal. */
export const EPSILON_MS = 1e-6;

export const FULL: BucketState = { tat: Number.NEGATIVE_INFINITY, flying: 0, hold: 0 };

export function intervalMs(limit: BucketLimit): number {
  return 1000 / limit.ratePerSec;
}

/** A hold past its time is gone, with the count: the replicas that held it died, or lost settles. */
function live(state: BucketState, now: number): BucketState {
  return state.hold > 0 && state.hold <= now ? { tat: state.tat, flying: 0, hold: 0 } : state;
}

/** When the next grant is possible, a hold included. */
function effective(state: BucketState): number {
  return state.hold > 0 ? Math.max(state.tat, state.hold) : state.tat;
}

/**
 * When the next call may arrive upstream. A leased call still flying may reach the upstream at any
 * moment before its answer, however long ago it was granted (a busy loop or network bunches calls
 * granted far apart): each counts as arriving now, not at its grant, until its settle places it.
 */
function earliest(state: BucketState, now: number, t: number): number {
  return Math.max(effective(state), now + state.flying * t);
}

/** True when the bucket is indistinguishable from a fresh one at `now` (it may be forgotten). */
export function isFull(state: BucketState, now: number): boolean {
  const s = live(state, now);
  return s.flying === 0 && s.hold === 0 && s.tat <= now;
}

/** Returns the decision and the bucket's new state (unchanged when denied). */
export function gcraAcquire(
  stored: BucketState,
  now: number,
  limit: BucketLimit,
  leaseMs = 0,
): { decision: Decision; state: BucketState } {
  const state = live(stored, now);
  const t = intervalMs(limit);
  const tolerance = (limit.burst - 1) * t;
  const start = Math.max(earliest(state, now, t), now);
  const ahead = start - now;
  // Within float rounding of the tolerance is within it: (now + t) − now can exceed t by 1e-13.
  if (ahead > tolerance + EPSILON_MS) {
    // Flying calls keep it shut until they settle, or until the hold ends (their count with it).
    const lifted = state.hold > 0 ? Math.max(state.hold - now, state.tat - now - tolerance) : ahead;
    const retryAfterMs = Math.min(ahead - tolerance, lifted);
    return { decision: { granted: false, remaining: 0, retryAfterMs }, state: stored };
  }
  const next = start + t;
  // Granted within EPSILON_MS past the tolerance, the count floors to −1: that grant emptied it.
  const remaining = Math.max(0, Math.floor((limit.burst * t - (next - now)) / t + 1e-9));
  const settleAfterMs = next - now - t;
  const leased = leaseMs > 0;
  const decision: Decision = { granted: true, remaining, settleAfterMs, grant: { leased } };
  if (!leased) return { decision, state: { tat: next, flying: state.flying, hold: state.hold } };
  // A grant that empties the bucket holds it closed until every flying call has landed — at most
  // one lease from the hold's start: a hold under way is never renewed, or the count of a replica
  // that died with grants flying would ride on from hold to hold and shut the bucket for good.
  const hold = remaining === 0 && state.hold === 0 ? now + leaseMs : state.hold;
  return { decision, state: { tat: next, flying: state.flying + 1, hold } };
}

/**
 * The granted call was just answered. Its arrival upstream was no later than its answer, and the calls
 * still flying may all arrive after it: the upstream's next arrival is due no later than one interval
 * from now per call (SPEC §7: spacing from the answer). A bucket already further on (a queue of
 * grants, a pause stored meanwhile) absorbs that. A leased call lands: the last one to land lifts
 * the hold.
 */
export function gcraSettle(stored: BucketState, now: number, limit: BucketLimit, grant?: Grant): BucketState {
  const state = live(stored, now);
  const lands = grant?.leased === true && state.flying > 0;
  const flying = lands ? state.flying - 1 : state.flying;
  const hold = lands && flying === 0 ? 0 : state.hold;
  const full = state.tat === Number.NEGATIVE_INFINITY && state.flying === 0 && state.hold === 0;
  const t = intervalMs(limit);
  const tat = full ? now + t : Math.max(state.tat, now + t * (1 + flying));
  return { tat, flying, hold };
}

/** How long until `state` grants again. */
export function gcraReopenIn(state: BucketState, now: number, limit: BucketLimit): number {
  const tolerance = (limit.burst - 1) * intervalMs(limit);
  return Math.max(0, effective(live(state, now)) - now - tolerance);
}

export function gcraPause(stored: BucketState, now: number, limit: BucketLimit, ms: number): BucketState {
  const state = live(stored, now);
  // A 429 means the upstream's bucket is empty: model it as empty after the pause.
  return { ...state, tat: Math.max(state.tat, now + ms + (limit.burst - 1) * intervalMs(limit)) };
}

/** `count` calls without a grant: the TAT moves on by their intervals, past the tolerance if need be. */
export function gcraCharge(stored: BucketState, now: number, limit: BucketLimit, count: number): BucketState {
  const state = live(stored, now);
  return { ...state, tat: Math.max(state.tat, now) + count * intervalMs(limit) };
}

export function gcraPeek(
  state: BucketState,
  now: number,
  limit: BucketLimit,
): { tokens: number; cooldownMs: number } {
  const t = intervalMs(limit);
  const tolerance = (limit.burst - 1) * t;
  const ahead = Math.max(0, earliest(live(state, now), now, t) - now);
  return {
    tokens: Math.max(0, Math.floor((limit.burst * t - ahead) / t + 1e-9)),
    cooldownMs: Math.max(0, ahead - tolerance),
  };
}
