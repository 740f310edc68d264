// GCRA arithmetic, pure. The in-process limiter calls it; scripts/gcra.lua is the same arithmetic
// run inside Redis (keep the two in step; limiter.case.test.ts runs both against the same cases).

import type { BucketLimit, Decision } from './limiter.js';

export function intervalMs(limit: BucketLimit): number {
  return 1000 / limit.ratePerSec;
}

/** Returns the decision and the bucket's new TAT (unchanged when denied). */
export function gcraAcquire(
  tat: number,
  now: number,
  limit: BucketLimit,
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
  return { decision: { granted: true, remaining, settleAfterMs: next - now - t }, tat: next };
}

export function gcraSettle(tat: number, now: number, limit: BucketLimit): number {
  return Math.max(tat, now + intervalMs(limit));
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
