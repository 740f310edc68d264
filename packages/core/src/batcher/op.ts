// The life of one caller's call inside the engine, from arrival to its one answer.

import type { SpanContext } from '@opentelemetry/api';
import { methodSemantics, type OpRequest } from '../dialect/dialect.js';
import type { ProxyError } from '../errors.js';
import { NORMAL, type Rank } from './priority.js';

export type Lane = 'batch' | 'single';

/** What the proxy measured for a call; rendered as `Server-Timing` (SPEC §6). */
export interface Timing {
  readonly queueMs: number;
  readonly upstreamMs: number;
  /** Ops in the upstream call that carried this op (1 on the single lane). */
  readonly batchSize: number;
  readonly lane: Lane;
  /** Upstream calls spent on this op (more than 1 after a retry or a 429). */
  readonly attempts: number;
  /** The upstream call that answered, unique in this process: ties a caller's log line to its batch. */
  readonly callId: number;
}

export type Answer =
  | {
      readonly kind: 'result';
      readonly status: number;
      readonly body: string;
      /** The upstream's answer headers that reach the caller (lower-case names; Graph's per op). */
      readonly headers?: Readonly<Record<string, string>>;
      readonly timing: Timing;
    }
  | { readonly kind: 'error'; readonly error: ProxyError; readonly timing?: Timing };

/** An op's states; app-state.ts is the only place that moves an op between them. */
export type OpState = 'queued' | 'inflight' | 'done';

export interface PendingOp {
  /** Arrival order within the engine; conflicts and fairness compare it. */
  readonly seq: number;
  readonly appId: string;
  /** Calls share a batch only with the same credential (SPEC §4). */
  readonly credential: string;
  readonly op: OpRequest;
  /** The dialect's word (`OpRequest.write`), or the method's. */
  readonly isWrite: boolean;
  /** May run twice without harm (`OpRequest.retrySafe`, or the method's): sent again after a 5xx. */
  readonly retrySafe: boolean;
  /** Key under which identical reads collapse; undefined for writes. */
  readonly readKey: string | undefined;
  /** The path the ordering rules compare (resources.ts `resourceOf`). */
  readonly resource: string;
  /**
   * Ordered among its own credential's ops only, never making another credential's op wait: the
   * upstream has not yet accepted the credential (SPEC §8d; app-state.ts). It still waits for earlier
   * ops of accepted credentials.
   */
  readonly isolated: boolean;
  readonly enqueuedAt: number;
  readonly deadline: number;
  /**
   * Its deadline is its caller's own, shorter than MAX_WAIT_MS (`x-batch-max-wait-ms`): arrival order
   * does not order it among the others' deadlines, so the planner checks it on its own
   * (group-queue.ts), and it collapses with no other read (either would wait by the other's deadline).
   */
  readonly hurried: boolean;
  /** Its caller's priority as a rank (priority.ts): 0 high, 1 normal, 2 low. */
  readonly rank: Rank;
  /** Not sent before this time (a retry's back-off). */
  notBefore: number;
  /**
   * The most ops a batch carrying this op may hold: halved each time a batch with it was refused as
   * a whole (a 4xx), so the op that caused the refusal ends up alone and gets it (outcome.ts).
   */
  batchCap: number;
  /**
   * The op, or its resource, was in a batch that failed as a whole (a 5xx): until it is answered it
   * never shares a batch with a write that may not be sent twice, and a suspect write rides alone.
   */
  suspect: boolean;
  state: OpState;
  attempts: number;
  /** Every caller waiting for this op: the first one and any collapsed identical reads. */
  waiters: Waiter[];
  /**
   * Set while the op waits behind an earlier unanswered op on the same resource (it cannot leave
   * before that one is answered): the planner does not look at it until then (app-state.ts).
   */
  parked: boolean;
  /** Parked ops waiting for this one's answer. */
  dependents: PendingOp[];
}

export interface Waiter {
  readonly arrivedAt: number;
  /** The caller's server span, linked from the upstream call's span. */
  readonly spanContext: SpanContext | undefined;
  readonly resolve: (answer: Answer) => void;
}

/** Whether an op writes: its dialect's word, else its method's. */
export function isWriteOp(op: OpRequest): boolean {
  return op.write ?? methodSemantics(op.method).write;
}

/** Whether an op may run twice without harm: its dialect's word, else its method's. */
export function isRetrySafeOp(op: OpRequest): boolean {
  return op.retrySafe ?? methodSemantics(op.method).retrySafe;
}

/** What makes an op: the caller's request and what the engine decided of it on arrival. */
export interface NewOp {
  readonly seq: number;
  readonly appId: string;
  readonly credential: string;
  readonly op: OpRequest;
  readonly readKey?: string | undefined;
  readonly resource: string;
  readonly isolated: boolean;
  readonly enqueuedAt: number;
  readonly deadline: number;
  /** Its deadline is the caller's own, shorter than the queue's (PendingOp.hurried). */
  readonly hurried?: boolean;
  /** Its caller's priority (priority.ts); absent = normal. */
  readonly rank?: Rank;
  /** Its resource failed a batch lately (SPEC §8d): a write of it rides alone. */
  readonly suspect?: boolean;
  readonly waiters?: Waiter[];
}

/** A queued op as it arrives: never sent, unparked, with no retry spent. The one constructor of ops. */
export function newPendingOp(f: NewOp): PendingOp {
  const suspect = f.suspect ?? false;
  const retrySafe = isRetrySafeOp(f.op);
  return {
    seq: f.seq,
    appId: f.appId,
    credential: f.credential,
    op: f.op,
    isWrite: isWriteOp(f.op),
    retrySafe,
    readKey: f.readKey,
    resource: f.resource,
    isolated: f.isolated,
    enqueuedAt: f.enqueuedAt,
    deadline: f.deadline,
    hurried: f.hurried ?? false,
    rank: f.rank ?? NORMAL,
    notBefore: 0,
    batchCap: suspect && !retrySafe ? 1 : Number.POSITIVE_INFINITY,
    suspect,
    state: 'queued',
    attempts: 0,
    waiters: f.waiters ?? [],
    parked: false,
    dependents: [],
  };
}
