// Fault injection for the fake upstream: what a test can make the next calls do wrong.
import {
  type FaultPlan as SharedPlan,
  type Targeted,
  type TransportFault,
  type TransportFaultVariant,
  takeFaultFor,
} from './fault-plan.js';

/** Which calls a fault applies to. */
export interface FaultTarget extends Targeted {
  /** Only calls to this app (default: any app). */
  appId?: string;
}

/**
 * One fault: a transport fault (fault-plan.ts) or one of the batch's results (several keys may be
 * combined; `delayMs` combines with any):
 * - `{ notArray: true }`: (batch) execute, answer 200 with the JSON object `{"ok":true}`.
 * - `{ dropResultSeq: [..] }`: (batch) execute all, omit the results of these sequence numbers.
 * - `{ duplicateResultSeq: [..] }`: (batch) execute all, repeat the results of these seqs twice.
 * - `{ unknownResultSeq: true }`: (batch) execute all, add a result for a seq that was not sent.
 * - `{ badStatus: true | [..] }`: (batch) execute all, the results of all (true) or these seqs carry
 *   the status as a string (`"200"`) instead of a number.
 * Result-level faults on a single call are ignored (the call is answered normally).
 */
export type Fault = FaultTarget &
  (
    | TransportFaultVariant
    | { notArray: true }
    | { dropResultSeq: number[] }
    | { duplicateResultSeq: number[] }
    | { unknownResultSeq: true }
    | { badStatus: true | number[] }
  );

/** Every field of every variant, optional: what the server reads. */
export interface FaultFields extends FaultTarget, TransportFault {
  notArray?: true;
  dropResultSeq?: number[];
  duplicateResultSeq?: number[];
  unknownResultSeq?: true;
  badStatus?: true | number[];
}

/** Mutable by tests while the fake runs (fault-plan.ts says which fault a call takes). */
export type FaultPlan = SharedPlan<Fault>;

/** The fault a call takes, if any (removed from the queue when it came from there). */
export const takeFault = (
  plan: FaultPlan,
  kind: 'batch' | 'single',
  appId: string,
  random: () => number,
): FaultFields | undefined => takeFaultFor(plan, kind, (f) => f.appId, appId, random);

/** Result-level faults: drop, duplicate, add unknown, or corrupt the status of some results. */
export function corruptResults(results: [number, number, unknown][], fault: FaultFields): unknown[] {
  let out: unknown[] = results;
  if (fault.dropResultSeq) {
    const drop = new Set(fault.dropResultSeq);
    out = results.filter(([seq]) => !drop.has(seq));
  }
  if (fault.duplicateResultSeq) {
    const dup = new Set(fault.duplicateResultSeq);
    out = out.concat(results.filter(([seq]) => dup.has(seq)));
  }
  if (fault.unknownResultSeq) {
    const max = Math.max(...results.map(([seq]) => seq));
    out = out.concat([[max + 1000, 200, {}]]);
  }
  if (fault.badStatus) {
    const bad = fault.badStatus === true ? undefined : new Set(fault.badStatus);
    out = out.map((r) => {
      const [seq, status, body] = r as [number, number, unknown];
      return bad === undefined || bad.has(seq) ? [seq, String(status), body] : r;
    });
  }
  return out;
}
