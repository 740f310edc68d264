// The HTTP rule every batch dialect shares for the batch call's own answer: a refused credential is
// every op's answer, any other non-200 means the batch ran as a whole or not at all, and a 200's body
// is decoded into one result per op by the dialect. Kept here once so the dialects cannot drift.

import type { BatchAnswer, OpResult } from './dialect.js';

export function readBatchEnvelope(
  status: number,
  body: string,
  decode: (decoded: unknown) => OpResult[],
): BatchAnswer {
  return readBatchText(status, body, (text) => {
    let decoded: unknown;
    try {
      decoded = JSON.parse(text);
    } catch {
      // An unreadable body is decoded as nothing: the dialect answers each op 502 on its own.
      decoded = undefined;
    }
    return decode(decoded);
  });
}

/**
 * The same rule for a dialect whose batch answer is not JSON (Google's multipart/mixed): a 200's
 * body text goes to `decode` as it is.
 */
export function readBatchText(
  status: number,
  body: string,
  decode: (text: string) => OpResult[],
): BatchAnswer {
  // One Authorization applies to the whole batch: each caller gets the upstream's own refusal.
  if (status === 401 || status === 403) return { kind: 'refused', status, body: body || '{}' };
  if (status !== 200) return { kind: 'rejected', status, body: body || '{}' };
  return { kind: 'results', results: decode(body) };
}

/** One result as a dialect read it: which of the batch's ops it answers, and its status as sent. */
export interface ResultEntry {
  readonly seq: number;
  readonly status: unknown;
}

/**
 * The split-back rule, one for every dialect: each of the `count` ops gets the answer its one result
 * makes (`answer`), or a 502 reason — no result, two results, an invalid status. Entries a dialect
 * could not read as one of the proxy's ops (undefined, a sequence out of range) are passed over.
 */
export function splitResults<E extends ResultEntry>(
  entries: Iterable<E | undefined>,
  count: number,
  answer: (entry: E, status: number) => OpResult,
): OpResult[] {
  const missing: OpResult = { ok: false, reason: 'the batch response has no result for this operation' };
  const results: OpResult[] = Array.from({ length: count }, () => missing);
  const seen = new Uint8Array(count);
  for (const entry of entries) {
    if (entry === undefined) continue;
    const { seq, status } = entry;
    if (!Number.isInteger(seq) || seq < 0 || seq >= count) continue;
    seen[seq] = (seen[seq] ?? 0) + 1;
    if (seen[seq] > 1) {
      results[seq] = { ok: false, reason: 'the batch response has two results for this operation' };
    } else if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
      results[seq] = { ok: false, reason: 'the batch response has an invalid status for this operation' };
    } else {
      results[seq] = answer(entry, status);
    }
  }
  return results;
}
