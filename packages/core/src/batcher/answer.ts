// What an upstream call's outcome does to its ops: answers them, puts them back (a 429: nothing ran),
// retries the idempotent ones (a failure), or splits a batch refused as a whole so that only the op
// that caused the refusal gets it.

import { ProxyError } from '../errors.js';
import type { Requeue } from './app-state.js';
import type { Answer, Lane, PendingOp, Timing } from './op.js';
import type { Outcome } from './outcome.js';
import { backoffMs, mayRetry } from './retry.js';

export type RequeueReason = '429' | '424' | 'retry' | 'split';

/** Where the ops of a call go: the app's engine. */
export interface OpSink {
  finish(op: PendingOp, answer: Answer, sentAt?: number): void;
  requeue(ops: PendingOp[], how: Requeue & { readonly reason: RequeueReason }): void;
  /** The ops' resources were in a batch that failed as a whole: they ride apart for a while. */
  suspect(ops: readonly PendingOp[]): void;
  /** The op got a usable answer: its resource is no longer suspect. */
  cleared(op: PendingOp): void;
}

export interface Call {
  readonly lane: Lane;
  readonly ops: PendingOp[];
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly callId: number;
}

export interface RetryPolicy {
  readonly now: number;
  readonly maxAttempts: number;
  readonly random: () => number;
}

export function applyOutcome(sink: OpSink, outcome: Outcome, call: Call, retry: RetryPolicy): void {
  const { ops, sentAt } = call;
  const timing = (op: PendingOp): Timing => ({
    queueMs: 0,
    upstreamMs: call.answeredAt - sentAt,
    batchSize: ops.length,
    lane: call.lane,
    attempts: op.attempts,
    callId: call.callId,
  });
  switch (outcome.kind) {
    case 'throttled':
      // Nothing ran: a 429 does not count against the ops' retry budget.
      sink.requeue(ops, { notBefore: 0, refundAttempt: true, reason: '429' });
      return;
    case 'failed': {
      // SPEC §8d: which op failed a batch is unknown. Every member's resource turns suspect; the
      // idempotent ones go again in halves, their attempt refunded (halving bounds it by log2 of the
      // batch), until the op that fails is alone and spends its own retries. The others may have run:
      // they get the error, and no write of their kind shares a batch with a suspect from now on.
      const split = ops.length > 1;
      if (split) sink.suspect(ops);
      // Only idempotent ops may go again (mayRetry): in a split, each is refunded.
      const again = ops.filter((op) => mayRetry(op, retry.now, retry.maxAttempts, split));
      for (const op of ops)
        if (!again.includes(op)) sink.finish(op, { kind: 'error', error: outcome.error }, sentAt);
      const first = again[0];
      if (first === undefined) return;
      const attempt = split ? first.attempts - 1 : first.attempts;
      sink.requeue(again, {
        notBefore: retry.now + backoffMs(Math.max(1, attempt), retry.random),
        refundAttempt: split,
        ...(split ? { cap: half(ops), suspect: true } : {}),
        reason: 'retry',
      });
      return;
    }
    case 'rejected': {
      const only = ops.length === 1 ? ops[0] : undefined;
      if (only) {
        // Alone in its batch: the refusal is this op's own answer.
        sink.finish(
          only,
          { kind: 'result', status: outcome.status, body: outcome.body, timing: timing(only) },
          sentAt,
        );
        return;
      }
      // Nothing ran: send the ops again in batches half as large, until the culprit is alone.
      sink.requeue(ops, { notBefore: 0, refundAttempt: true, cap: half(ops), reason: 'split' });
      return;
    }
    case 'answered': {
      // Ops the upstream throttled inside the batch did not run: back to the front of their queue,
      // with their retry budget untouched; every other answer goes out at once.
      const throttled: PendingOp[] = [];
      const unrun: PendingOp[] = [];
      ops.forEach((op, i) => {
        const a =
          outcome.answers[i] ?? new ProxyError('PROXY_UPSTREAM_BAD_RESPONSE', 'the operation has no result');
        if (!(a instanceof ProxyError) && 'again' in a) {
          (a.why === '429' ? throttled : unrun).push(op);
          return;
        }
        const answer: Answer =
          a instanceof ProxyError
            ? { kind: 'error', error: a, timing: timing(op) }
            : a.headers
              ? { kind: 'result', status: a.status, body: a.body, headers: a.headers, timing: timing(op) }
              : { kind: 'result', status: a.status, body: a.body, timing: timing(op) };
        if (!(a instanceof ProxyError) && a.status < 500 && op.suspect) sink.cleared(op);
        sink.finish(op, answer, sentAt);
      });
      for (const [again, why] of [
        [throttled, '429'],
        [unrun, '424'],
      ] as const) {
        if (again.length === 0) continue;
        sink.requeue(again, { notBefore: 0, refundAttempt: true, reason: why });
      }
      return;
    }
  }
}

/** A batch half as large as the one that failed or was refused as a whole, at least 1. */
function half(ops: readonly PendingOp[]): number {
  return Math.max(1, Math.floor(ops.length / 2));
}

/** The answer with the caller's own queue time (from its arrival to the call's departure). */
export function withQueueTime(answer: Answer, queueMs: number): Answer {
  if (!answer.timing) return answer;
  return { ...answer, timing: { ...answer.timing, queueMs: Math.max(0, queueMs) } };
}

/** What an op, or a call waiting for a token, gets when its caller went away. */
export function callerGone(): ProxyError {
  return new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away');
}

/** What an op gets when it cannot leave before its deadline: retry after `retryMs`. */
export function deadlineError(retryMs: number): ProxyError {
  return new ProxyError(
    'PROXY_DEADLINE_EXCEEDED',
    'the call could not be sent upstream before its deadline',
    {
      retryAfterSec: Math.max(1, Math.ceil(retryMs / 1000)),
    },
  );
}
