// What an upstream call's answer means for its ops, pure: throttled (a 429: nothing ran), failed (a
// 5xx, a reset or a timeout: may be retried), or one answer per op (an op the upstream throttled
// inside a 200 batch is `again`: it did not run). The dialect reads the batch wire
// format; the HTTP rules every dialect shares are here.

import type { BatchDialect, BatchPlan, OpRequest, ThrottleScope } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import type { BufferedResponse } from '../upstream/client.js';
import type { Lane } from './op.js';
import { pauseMs } from './retry.js';

/**
 * One op's answer from the upstream: its status, body text and the answer headers that reach its
 * caller; or `again` (not executed: a 429 inside a 200 batch, with its Retry-After); or why it has
 * none.
 */
export type OpOutcome =
  | {
      readonly status: number;
      readonly body: string;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      readonly again: true;
      readonly why: '429' | '424';
      readonly retryAfter: string | undefined;
      readonly scope?: ThrottleScope;
    }
  | ProxyError;

export type Outcome =
  | { readonly kind: 'throttled'; readonly response: BufferedResponse }
  | { readonly kind: 'failed'; readonly error: ProxyError }
  /** A batch the upstream refused as a whole (a 4xx other than 401/403/429): none of it ran. */
  | { readonly kind: 'rejected'; readonly status: number; readonly body: string }
  | { readonly kind: 'answered'; readonly answers: readonly OpOutcome[] };

export function classify(
  dialect: BatchDialect,
  lane: Lane,
  count: number,
  result: BufferedResponse | ProxyError,
  plan: BatchPlan = 'parallel',
  ops: readonly OpRequest[] = [],
): Outcome {
  if (result instanceof ProxyError) return { kind: 'failed', error: result };
  if (result.status === 429) return { kind: 'throttled', response: result };
  if (result.status >= 500) {
    const call = lane === 'batch' ? 'the batch call' : 'the call';
    return {
      kind: 'failed',
      error: new ProxyError(
        'PROXY_UPSTREAM_UNAVAILABLE',
        `the upstream answered ${call} with ${result.status}`,
      ),
    };
  }
  if (lane === 'single') {
    const headers = dialect.answerHeaders(result.headers);
    const answer = { status: result.status, body: jsonText(result.body) };
    return {
      kind: 'answered',
      answers: [Object.keys(headers).length > 0 ? { ...answer, headers } : answer],
    };
  }
  const answer = dialect.readBatchAnswer(result.status, result.body, count, plan, {
    ops,
    headers: result.headers,
  });
  switch (answer.kind) {
    case 'refused':
      return { kind: 'answered', answers: Array.from({ length: count }, () => answer) };
    case 'rejected':
      return { kind: 'rejected', status: answer.status, body: answer.body };
    case 'results':
      return {
        kind: 'answered',
        answers: Array.from({ length: count }, (_, i): OpOutcome => {
          const r = answer.results[i];
          if (r === undefined)
            return new ProxyError(
              'PROXY_UPSTREAM_BAD_RESPONSE',
              'the batch response has no result for this operation',
            );
          if (r.ok === 'again')
            return r.scope
              ? { again: true, why: r.why, retryAfter: r.retryAfter, scope: r.scope }
              : { again: true, why: r.why, retryAfter: r.retryAfter };
          if (r.ok === false) return new ProxyError('PROXY_UPSTREAM_BAD_RESPONSE', r.reason);
          // An op answered without a body (a Graph 204) has none for its caller either.
          const body = r.text ?? (r.body === undefined ? '' : serialise(r.body));
          if (body === undefined)
            return new ProxyError(
              'PROXY_UPSTREAM_BAD_RESPONSE',
              'the operation result cannot be re-serialised',
            );
          return r.headers && Object.keys(r.headers).length > 0
            ? { status: r.status, body, headers: r.headers }
            : { status: r.status, body };
        }),
      };
  }
}

/** JSON text of a decoded op result; undefined when it cannot be serialised (e.g. nested too deep). */
function serialise(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** The upstream's body as JSON text for the caller (`{}` for an empty body, SPEC §2). */
function jsonText(body: string): string {
  return body.length === 0 ? '{}' : body;
}

/**
 * The longest Retry-After among the ops of an answered batch that must go again (a 429 inside a 200
 * batch), in ms and capped at `capMs` (retry.ts `pauseMs`); undefined when none must. An op throttled
 * without a Retry-After counts as the default pause.
 */
/** Whether the upstream throttled an op inside the batch (a 429 in a 200 batch). */
export function opsThrottled(outcome: Outcome): boolean {
  if (outcome.kind !== 'answered') return false;
  return outcome.answers.some((a) => !(a instanceof ProxyError) && 'again' in a && a.why === '429');
}

/** Whether an op throttled inside the batch was throttled in a scope as wide as the app's. */
export function throttledAppWide(outcome: Outcome): boolean {
  if (outcome.kind !== 'answered') return false;
  return outcome.answers.some((a) => !(a instanceof ProxyError) && 'again' in a && a.scope === 'app');
}

export function longestRetryAfter(outcome: Outcome, epochMs: number, capMs: number): number | undefined {
  if (outcome.kind !== 'answered') return undefined;
  let longest: number | undefined;
  for (const a of outcome.answers) {
    // Only a throttled op says how long the bucket is empty; a chain's 424 says nothing about it.
    if (a instanceof ProxyError || !('again' in a) || a.why !== '429') continue;
    const ms = pauseMs(a.retryAfter, epochMs, capMs);
    if (longest === undefined || ms > longest) longest = ms;
  }
  return longest;
}
