// What an upstream call's answer means for its ops, pure: throttled (a 429: nothing ran), failed (a
// 5xx, a reset or a timeout: may be retried), or one answer per op. The dialect reads the batch wire
// format; the HTTP rules every dialect shares are here.

import type { BatchDialect } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import type { BufferedResponse } from '../upstream/client.js';
import type { Lane } from './op.js';

/** One op's answer from the upstream: its status and JSON body text, or why it has none. */
export type OpOutcome = { readonly status: number; readonly body: string } | ProxyError;

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
  if (lane === 'single')
    return { kind: 'answered', answers: [{ status: result.status, body: jsonText(result.body) }] };
  const answer = dialect.readBatchAnswer(result.status, result.body, count);
  switch (answer.kind) {
    case 'refused':
      return { kind: 'answered', answers: Array.from({ length: count }, () => answer) };
    case 'rejected':
      return { kind: 'rejected', status: answer.status, body: answer.body };
    case 'results':
      return {
        kind: 'answered',
        answers: Array.from({ length: count }, (_, i) => {
          const r = answer.results[i];
          const body = r?.ok === true ? serialise(r.body) : undefined;
          if (r?.ok === true && body !== undefined) return { status: r.status, body };
          const reason =
            r?.ok === true
              ? 'the operation result cannot be re-serialised'
              : (r?.reason ?? 'the batch response has no result for this operation');
          return new ProxyError('PROXY_UPSTREAM_BAD_RESPONSE', reason);
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
