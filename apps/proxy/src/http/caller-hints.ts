// What a caller may tell the proxy about its own call, in headers the upstream never sees (issue #31,
// SPEC §9): `x-batch-max-wait-ms`, how long it will wait at most (its own client timeout), so it gets
// a 503 + Retry-After in time instead of an answer it has stopped waiting for. A value the proxy
// cannot use is ignored — the call goes on under MAX_WAIT_MS — and named in its Server-Timing,
// never refused: a hint must not cost a caller its call.

import type { IncomingHttpHeaders } from 'node:http';

export const MAX_WAIT_HEADER = 'x-batch-max-wait-ms';

/** The hint headers, dropped before the upstream on every route. */
export const HINT_HEADERS: readonly string[] = [MAX_WAIT_HEADER];

export type MaxWaitHint =
  | { readonly kind: 'none' }
  | { readonly kind: 'ms'; readonly ms: number }
  | { readonly kind: 'ignored'; readonly header: string };

const NONE: MaxWaitHint = { kind: 'none' };
/** Whole milliseconds, at most 9 digits (11.5 days: beyond any MAX_WAIT_MS). */
const MS = /^[0-9]{1,9}$/;

/** The caller's longest wait in ms (MAX_WAIT_MS bounds it later), or why it was ignored. */
export function maxWaitHint(headers: IncomingHttpHeaders): MaxWaitHint {
  const raw = headers[MAX_WAIT_HEADER];
  if (raw === undefined) return NONE;
  // Two values (a repeated header) name no one wait.
  const value = typeof raw === 'string' ? raw.trim() : undefined;
  if (value === undefined || !MS.test(value)) return { kind: 'ignored', header: MAX_WAIT_HEADER };
  return { kind: 'ms', ms: Number(value) };
}

/** The Server-Timing entry naming a hint the proxy ignored. */
export function ignoredTiming(header: string): string {
  return `ignored;desc="${header}"`;
}
