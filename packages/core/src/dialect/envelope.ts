// The HTTP rule every batch dialect shares for the batch call's own answer: a refused credential is
// every op's answer, any other non-200 means the batch ran as a whole or not at all, and a 200's body
// is decoded into one result per op by the dialect. Kept here once so the dialects cannot drift.

import type { BatchAnswer, OpResult } from './dialect.js';

export function readBatchEnvelope(
  status: number,
  body: string,
  decode: (decoded: unknown) => OpResult[],
): BatchAnswer {
  // One Authorization applies to the whole batch: each caller gets the upstream's own refusal.
  if (status === 401 || status === 403) return { kind: 'refused', status, body: body || '{}' };
  if (status !== 200) return { kind: 'rejected', status, body: body || '{}' };
  let decoded: unknown;
  try {
    decoded = JSON.parse(body);
  } catch {
    // An unreadable body is decoded as nothing: the dialect answers each op 502 on its own.
    decoded = undefined;
  }
  return { kind: 'results', results: decode(decoded) };
}
