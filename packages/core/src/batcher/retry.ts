// When a failed upstream call is tried again: which ops may be, how often, after how long, and how
// long a 429's Retry-After is honoured.

import type { PendingOp } from './op.js';

/** A 429 without a usable Retry-After pauses the bucket this long. */
export const DEFAULT_429_PAUSE_MS = 1000;

/**
 * An op that may run twice without harm may be sent again after a 5xx, a reset or a timeout.
 * `refunded`: its last attempt will not count (it went out in a batch now split).
 */
export function mayRetry(op: PendingOp, now: number, maxAttempts: number, refunded = false): boolean {
  const spent = refunded ? op.attempts - 1 : op.attempts;
  return op.retrySafe && spent < maxAttempts && now < op.deadline;
}

/** Jittered exponential back-off, so a struggling upstream is not hit again at once. */
export function backoffMs(attempt: number, random: () => number): number {
  return 50 * 2 ** (attempt - 1) * (0.5 + random());
}

/**
 * How long a 429 pauses its bucket: the Retry-After header (seconds or an HTTP date, read against
 * `epochMs`), at most `capMs` — an upstream saying "a day" must not freeze the app for a day.
 */
export function pauseMs(header: string | string[] | undefined, epochMs: number, capMs: number): number {
  const value = Array.isArray(header) ? header[0] : header;
  return Math.min(capMs, retryAfterMs(value, epochMs) ?? DEFAULT_429_PAUSE_MS);
}

function retryAfterMs(value: string | undefined, epochMs: number): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - epochMs);
}
