// Fault injection for the fake Graph upstream, with the same plan semantics as the TalkJS fake's
// (queue, then always, then random), for what a test can make the next calls do wrong.
import { applies, type FaultPlan as SharedPlan, takeFault as takeFrom } from '../fake-upstream/fault-plan.js';

export interface FaultTarget {
  /** Calls to `$batch` (default), single calls, or either. */
  on?: 'batch' | 'single' | 'any';
  /** Only calls for this tenant (default: any). */
  tenant?: string;
  /**
   * Hold the answer this long (ms). By default the requests run first and the answer is late; with
   * `delayBeforeExecute` they run only after the delay (even if the caller is gone).
   */
  delayMs?: number;
  delayBeforeExecute?: boolean;
}

/**
 * One fault (`delayMs` combines with any):
 * - `{ status }`: answer this status with a Graph error body (or `body`) WITHOUT executing anything;
 *   `afterExecute: true` executes first. `retryAfterSec` adds `Retry-After`.
 * - `{ delayMs }`: only a delay.
 * - `{ reset: 'before-execute' | 'after-execute' }`: destroy the socket without answering.
 * - `{ truncateBody: true }`: execute, send half the body, destroy the socket.
 * - `{ notJson: true }`: execute, answer 200 with an HTML body.
 * - `{ dropResponseIds: [..] }` / `{ duplicateResponseIds: [..] }` / `{ unknownResponseId: true }`:
 *   ($batch) execute all; omit, repeat, or add a response for an id that was not sent.
 * Response-level faults on a single call are ignored.
 */
export type Fault = FaultTarget &
  (
    | { status: number; retryAfterSec?: number; afterExecute?: boolean; body?: unknown }
    | { delayMs: number }
    | { reset: 'before-execute' | 'after-execute' }
    | { truncateBody: true }
    | { notJson: true }
    | { dropResponseIds: string[] }
    | { duplicateResponseIds: string[] }
    | { unknownResponseId: true }
  );

export interface FaultFields extends FaultTarget {
  status?: number;
  retryAfterSec?: number;
  afterExecute?: boolean;
  body?: unknown;
  reset?: 'before-execute' | 'after-execute';
  truncateBody?: true;
  notJson?: true;
  dropResponseIds?: string[];
  duplicateResponseIds?: string[];
  unknownResponseId?: true;
}

/** Mutable by tests while the fake runs (fault-plan.ts says which fault a call takes). */
export type FaultPlan = SharedPlan<Fault>;

export function takeFault(
  plan: FaultPlan,
  kind: 'batch' | 'single',
  tenant: string,
  random: () => number,
): FaultFields | undefined {
  return takeFrom(plan, (f) => applies(f, kind, f.tenant, tenant), random);
}

export interface BatchResponse {
  id: string;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** Response-level faults: drop, duplicate, or add an unknown response. */
export function corruptResponses(responses: BatchResponse[], fault: FaultFields): BatchResponse[] {
  let out = responses;
  if (fault.dropResponseIds) {
    const drop = new Set(fault.dropResponseIds);
    out = out.filter((r) => !drop.has(r.id));
  }
  if (fault.duplicateResponseIds) {
    const dup = new Set(fault.duplicateResponseIds);
    out = out.concat(responses.filter((r) => dup.has(r.id)));
  }
  if (fault.unknownResponseId) out = out.concat([{ id: 'not-sent', status: 200, body: {} }]);
  return out;
}
