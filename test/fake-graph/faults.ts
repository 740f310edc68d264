// Fault injection for the fake Graph upstream, with the same plan semantics as the TalkJS fake's
// (queue, then always, then random), for what a test can make the next calls do wrong.
import {
  type FaultPlan as SharedPlan,
  type Targeted,
  type TransportFault,
  type TransportFaultVariant,
  takeFaultFor,
} from '../fake-upstream/fault-plan.js';

export interface FaultTarget extends Targeted {
  /** Only calls for this tenant (default: any). */
  tenant?: string;
}

/**
 * One fault: a transport fault (test/fake-upstream/fault-plan.ts) or one of the `$batch` responses
 * (`delayMs` combines with any):
 * - `{ dropResponseIds: [..] }` / `{ duplicateResponseIds: [..] }` / `{ unknownResponseId: true }`:
 *   ($batch) execute all; omit, repeat, or add a response for an id that was not sent.
 * Response-level faults on a single call are ignored.
 */
export type Fault = FaultTarget &
  (
    | TransportFaultVariant
    | { dropResponseIds: string[] }
    | { duplicateResponseIds: string[] }
    | { unknownResponseId: true }
  );

export interface FaultFields extends FaultTarget, TransportFault {
  dropResponseIds?: string[];
  duplicateResponseIds?: string[];
  unknownResponseId?: true;
}

/** Mutable by tests while the fake runs (fault-plan.ts says which fault a call takes). */
export type FaultPlan = SharedPlan<Fault>;

/** The fault a call takes, if any (removed from the queue when it came from there). */
export const takeFault = (
  plan: FaultPlan,
  kind: 'batch' | 'single',
  tenant: string,
  random: () => number,
): FaultFields | undefined => takeFaultFor(plan, kind, (f) => f.tenant, tenant, random);

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
