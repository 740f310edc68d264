// GCRA arithmetic, pure. The in-process limiter calls it; scripts/gcra.lua is the same arithmetic
// run inside Redis (keep the two in step; redis.test.ts runs both against the same cases).

import type { BucketLimit, Decision, Grant, Lease } from './limiter.js';

/**
 * One bucket: its TAT (theoretical arrival time of the next call; -Infinity = full), and the lease
 * of a grant that emptied it and holds it closed until that call is answered: the time the lease
 * ends at the latest, as a string that also names it.
 */
export interface BucketState {
  readonly tat: number;
  readonly lease?: string;
}

export const FULL: BucketState = { tat: Number.NEGATIVE_INFINITY };

export function intervalMs(limit: BucketLimit): number {
  return 1000 / limit.ratePerSec;
}

/** The lease still in force at `now` (an expired one is gone: its replica died). */
function liveLease(state: BucketState, now: number): string | undefined {
  return state.lease !== undefined && Number(state.lease) > now ? state.lease : undefined;
}

/** When the next grant is possible, a lease included. */
function effective(tat: number, lease: string | undefined): number {
  return lease === undefined ? tat : Math.max(tat, Number(lease));
}

function bucket(tat: number, lease: string | undefined): BucketState {
  return lease === undefined ? { tat } : { tat, lease };
}

/** Returns the decision and the bucket's new state (unchanged when denied). */
export function gcraAcquire(
  state: BucketState,
  now: number,
  limit: BucketLimit,
  leaseMs = 0,
): { decision: Decision; state: BucketState } {
  const t = intervalMs(limit);
  const tolerance = (limit.burst - 1) * t;
  const start = Math.max(effective(state.tat, liveLease(state, now)), now);
  const ahead = start - now;
  if (ahead > tolerance) {
    return { decision: { granted: false, remaining: 0, retryAfterMs: ahead - tolerance }, state };
  }
  const next = start + t;
  const remaining = Math.floor((limit.burst * t - (next - now)) / t + 1e-9);
  const settleAfterMs = next - now - t;
  if (leaseMs > 0 && remaining === 0) {
    const lease: Lease = { leasedTat: String(next + leaseMs), baseTat: String(next) };
    return {
      decision: { granted: true, remaining, settleAfterMs, grant: lease, lease },
      state: { tat: next, lease: lease.leasedTat },
    };
  }
  return {
    decision: { granted: true, remaining, settleAfterMs, grant: { baseTat: String(next) } },
    state: { tat: next },
  };
}

/**
 * The granted call was just answered. Its arrival upstream was no later than its answer: for the
 * upstream it was granted as late as now at worst (SPEC §7: spacing from the answer). The call's own
 * lease, if still in force, is released and the next grant spaced one interval from now; otherwise
 * the bucket moves by how much later than its grant the call can have counted, and grants made since,
 * stacked on it, move with it. A bucket already further on (a pause stored meanwhile, a queue of
 * grants) absorbs that. Another call's lease stays.
 */
export function gcraSettle(state: BucketState, now: number, limit: BucketLimit, grant?: Grant): BucketState {
  const spaced = now + intervalMs(limit);
  const lease = liveLease(state, now);
  if (state.tat === Number.NEGATIVE_INFINITY && lease === undefined) return { tat: spaced };
  if (grant?.leasedTat !== undefined && lease === grant.leasedTat) {
    return { tat: Math.max(state.tat, spaced) };
  }
  if (grant) return bucket(state.tat + Math.max(0, spaced - Number(grant.baseTat)), lease);
  return bucket(Math.max(state.tat, spaced), lease);
}

export function gcraPause(state: BucketState, now: number, limit: BucketLimit, ms: number): BucketState {
  // A 429 means the upstream's bucket is empty: model it as empty after the pause.
  return bucket(Math.max(state.tat, now + ms + (limit.burst - 1) * intervalMs(limit)), liveLease(state, now));
}

export function gcraPeek(
  state: BucketState,
  now: number,
  limit: BucketLimit,
): { tokens: number; cooldownMs: number } {
  const t = intervalMs(limit);
  const tolerance = (limit.burst - 1) * t;
  const ahead = Math.max(0, effective(state.tat, liveLease(state, now)) - now);
  return {
    tokens: Math.max(0, Math.floor((limit.burst * t - ahead) / t + 1e-9)),
    cooldownMs: Math.max(0, ahead - tolerance),
  };
}
