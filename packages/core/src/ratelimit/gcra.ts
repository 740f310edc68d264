// GCRA arithmetic, pure. The in-process limiter calls it; scripts/gcra.lua is the same arithmetic
// run inside Redis (keep the two in step; limiter.case.test.ts runs both against the same cases).

import type { BucketLimit, Decision, Grant, Lease } from './limiter.js';

export function intervalMs(limit: BucketLimit): number {
  return 1000 / limit.ratePerSec;
}

/** Returns the decision and the bucket's new TAT (unchanged when denied). */
export function gcraAcquire(
  tat: number,
  now: number,
  limit: BucketLimit,
  leaseMs = 0,
): { decision: Decision; tat: number } {
  const t = intervalMs(limit);
  const tolerance = (limit.burst - 1) * t;
  const start = Math.max(tat, now);
  const ahead = start - now;
  if (ahead > tolerance) {
    return { decision: { granted: false, remaining: 0, retryAfterMs: ahead - tolerance }, tat };
  }
  const next = start + t;
  const remaining = Math.floor((limit.burst * t - (next - now)) / t + 1e-9);
  const settleAfterMs = next - now - t;
  if (leaseMs > 0 && remaining === 0) {
    const leased = next + leaseMs;
    const lease: Lease = { leasedTat: String(leased), baseTat: String(next) };
    return { decision: { granted: true, remaining, settleAfterMs, grant: lease, lease }, tat: leased };
  }
  return {
    decision: { granted: true, remaining, settleAfterMs, grant: { baseTat: String(next) } },
    tat: next,
  };
}

/**
 * The call was answered `lagMs` after its grant was asked for: its arrival upstream may have been that
 * late, so the bucket moves as if granted then (a lease, if still in place, is released to that).
 */
export function gcraSettle(tat: number, now: number, limit: BucketLimit, grant?: Grant, lagMs = 0): number {
  if (!grant) return Math.max(tat, now + intervalMs(limit));
  const moved = Number(grant.baseTat) + lagMs;
  if (grant.leasedTat !== undefined && String(tat) === grant.leasedTat) return moved;
  return Math.max(tat, moved);
}

export function gcraPause(tat: number, now: number, limit: BucketLimit, ms: number): number {
  // A 429 means the upstream's bucket is empty: model it as empty after the pause.
  return Math.max(tat, now + ms + (limit.burst - 1) * intervalMs(limit));
}

export function gcraPeek(
  tat: number,
  now: number,
  limit: BucketLimit,
): { tokens: number; cooldownMs: number } {
  const t = intervalMs(limit);
  const tolerance = (limit.burst - 1) * t;
  const ahead = Math.max(0, tat - now);
  return {
    tokens: Math.max(0, Math.floor((limit.burst * t - ahead) / t + 1e-9)),
    cooldownMs: Math.max(0, ahead - tolerance),
  };
}
