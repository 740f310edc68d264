// Fault injection for the fake Salesforce org, with the plan semantics both other fakes share (queue,
// then always, then random): what a test can make the next calls do wrong.
import {
  type FaultPlan as SharedPlan,
  type Targeted,
  type TransportFault,
  type TransportFaultVariant,
  takeFaultFor,
} from '../fake-upstream/fault-plan.js';

/**
 * One fault: a transport fault (test/fake-upstream/fault-plan.ts: `{ status }` is the whole-batch 5xx
 * switch, nothing executed unless `afterExecute`) or one of the composite answer's faults (`delayMs`
 * combines with any), which execute every subrequest and then:
 * - `{ dropReferenceIds: [..] }`: leave those results out;
 * - `{ duplicateReferenceIds: [..] }`: answer those twice;
 * - `{ unknownReferenceId: true }`: add a result for a referenceId that was not sent;
 * - `{ badResultReferenceIds: [..] }`: answer those with a result that is not one (no status).
 * Answer-level faults on a single call are ignored.
 */
export type Fault = Targeted &
  (
    | TransportFaultVariant
    | { dropReferenceIds: string[] }
    | { duplicateReferenceIds: string[] }
    | { unknownReferenceId: true }
    | { badResultReferenceIds: string[] }
  );

export interface FaultFields extends Targeted, TransportFault {
  dropReferenceIds?: string[];
  duplicateReferenceIds?: string[];
  unknownReferenceId?: true;
  badResultReferenceIds?: string[];
}

/** Mutable by tests while the fake runs. */
export type FaultPlan = SharedPlan<Fault>;

/** The fault a call takes, if any (removed from the queue when it came from there). One org: no scope. */
export const takeFault = (
  plan: FaultPlan,
  kind: 'batch' | 'single',
  random: () => number,
): FaultFields | undefined => takeFaultFor(plan, kind, () => undefined, '', random);

export interface CompositeResult {
  body: unknown;
  httpHeaders: Record<string, string>;
  httpStatusCode: number;
  referenceId: string;
}

/** Answer-level faults on a composite's results. */
export function corruptResults(results: CompositeResult[], fault: FaultFields): unknown[] {
  let out: unknown[] = results;
  const bad = new Set(fault.badResultReferenceIds ?? []);
  if (bad.size > 0) {
    out = results.map((r) => (bad.has(r.referenceId) ? { referenceId: r.referenceId, body: 'garbled' } : r));
  }
  if (fault.dropReferenceIds) {
    const drop = new Set(fault.dropReferenceIds);
    out = out.filter((r) => !drop.has((r as CompositeResult).referenceId));
  }
  if (fault.duplicateReferenceIds) {
    const dup = new Set(fault.duplicateReferenceIds);
    out = out.concat(results.filter((r) => dup.has(r.referenceId)));
  }
  if (fault.unknownReferenceId) {
    out = out.concat([{ body: null, httpHeaders: {}, httpStatusCode: 204, referenceId: 'notSent' }]);
  }
  return out;
}
