// What a caller may tell the proxy about its own call, in headers the upstream never sees (issue #31,
// SPEC §9): `x-batch-max-wait-ms`, how long it will wait at most (its own client timeout), so it gets
// a 503 + Retry-After in time instead of an answer it has stopped waiting for; `x-batch-priority`,
// which of its calls go first when tokens are scarce (core's priority.ts). A value the proxy cannot
// use is ignored — the call goes on as if it had not been sent — and named in its Server-Timing,
// never refused: a hint must not cost a caller its call.

import type { IncomingHttpHeaders } from 'node:http';
import { PRIORITIES, type Priority } from '@batch-proxy/core';
import type { PriorityRules } from './priority-rules.js';

export const MAX_WAIT_HEADER = 'x-batch-max-wait-ms';
export const PRIORITY_HEADER = 'x-batch-priority';

/** The hint headers, dropped before the upstream on every route. */
export const HINT_HEADERS: readonly string[] = [MAX_WAIT_HEADER, PRIORITY_HEADER];

export interface Hints {
  /** The caller's longest wait in ms (MAX_WAIT_MS bounds it later). */
  readonly maxWaitMs: number | undefined;
  /** The call's priority: the caller's header, else the operator's rules; undefined = normal. */
  readonly priority: Priority | undefined;
  /** Hint headers sent with a value the proxy cannot use. */
  readonly ignored: readonly string[] | undefined;
}

/** Whole milliseconds, at most 9 digits (11.5 days: beyond any MAX_WAIT_MS). */
const MS = /^[0-9]{1,9}$/;

/** The one value of a header; undefined when absent or repeated (two values name no one hint). */
function single(headers: IncomingHttpHeaders, name: string): string | undefined | null {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  return typeof raw === 'string' ? raw.trim() : null;
}

export function readHints(
  headers: IncomingHttpHeaders,
  method: string,
  pathname: string,
  rules?: PriorityRules,
): Hints {
  let ignored: string[] | undefined;
  const wait = single(headers, MAX_WAIT_HEADER);
  let maxWaitMs: number | undefined;
  if (wait !== undefined) {
    if (wait !== null && MS.test(wait)) maxWaitMs = Number(wait);
    else ignored = [MAX_WAIT_HEADER];
  }
  let priority: Priority | undefined;
  const asked = single(headers, PRIORITY_HEADER);
  if (asked !== undefined) {
    const lower = asked?.toLowerCase();
    if (lower !== undefined && (PRIORITIES as readonly string[]).includes(lower))
      priority = lower as Priority;
    else ignored = [...(ignored ?? []), PRIORITY_HEADER];
  }
  priority ??= rules?.priorityOf(method, pathname);
  return { maxWaitMs, priority, ignored };
}

/** The Server-Timing entries naming the hints the proxy ignored. */
export function ignoredTiming(headers: readonly string[]): string {
  return headers.map((h) => `ignored;desc="${h}"`).join(', ');
}
