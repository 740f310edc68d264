import { describe, expect, it } from 'vitest';
import type { OpResult } from './dialect.js';
import { readBatchEnvelope, readBatchText, splitResults } from './envelope.js';

// Records what the dialect's decoder was given, and answers one recognisable result.
function decoder() {
  const seen: unknown[] = [];
  const decode = (decoded: unknown): OpResult[] => {
    seen.push(decoded);
    return [{ ok: true, status: 200, body: { decoded } }];
  };
  return { seen, decode };
}

describe('readBatchEnvelope', () => {
  it.each([401, 403])('a %i refuses every op with the upstream body, never decoding it', (status) => {
    const { seen, decode } = decoder();
    expect(readBatchEnvelope(status, '{"error":"bad key"}', decode)).toEqual({
      kind: 'refused',
      status,
      body: '{"error":"bad key"}',
    });
    expect(readBatchEnvelope(status, '', decode)).toEqual({ kind: 'refused', status, body: '{}' });
    expect(seen).toEqual([]);
  });

  it.each([400, 404, 413, 201, 204, 500])('a %i rejects the batch as a whole with its body', (status) => {
    const { seen, decode } = decoder();
    expect(readBatchEnvelope(status, 'too large', decode)).toEqual({
      kind: 'rejected',
      status,
      body: 'too large',
    });
    expect(readBatchEnvelope(status, '', decode)).toEqual({ kind: 'rejected', status, body: '{}' });
    expect(seen).toEqual([]);
  });

  it('a 200 hands the parsed body to the dialect and returns its results', () => {
    const { seen, decode } = decoder();
    expect(readBatchEnvelope(200, '{"responses":[1]}', decode)).toEqual({
      kind: 'results',
      results: [{ ok: true, status: 200, body: { decoded: { responses: [1] } } }],
    });
    expect(seen).toEqual([{ responses: [1] }]);
  });

  it('a 200 whose body is not JSON is decoded as nothing, so the dialect fails each op itself', () => {
    const { seen, decode } = decoder();
    expect(readBatchEnvelope(200, '<html>oops', decode)).toEqual({
      kind: 'results',
      results: [{ ok: true, status: 200, body: { decoded: undefined } }],
    });
    expect(seen).toEqual([undefined]);
  });
});

describe('splitResults', () => {
  const answer = (_: { seq: number; status: unknown }, status: number) => ({
    ok: true as const,
    status,
    body: {},
  });

  it('gives each op its one result, and a reason to the ops with none, two, or an invalid status', () => {
    const results = splitResults(
      [
        { seq: 0, status: 200 },
        { seq: 1, status: 201 },
        { seq: 1, status: 200 },
        { seq: 2, status: 199 },
        { seq: 3, status: 600 },
        { seq: 4, status: 204.5 },
        { seq: 5, status: '200' },
        undefined,
        { seq: 6.5, status: 200 },
        { seq: -1, status: 200 },
        { seq: 8, status: 200 },
      ],
      8,
      answer,
    );
    expect(results.map((r) => (r.ok === true ? r.status : r.ok === false ? r.reason : r.ok))).toEqual([
      200,
      'the batch response has two results for this operation',
      'the batch response has an invalid status for this operation',
      'the batch response has an invalid status for this operation',
      'the batch response has an invalid status for this operation',
      'the batch response has an invalid status for this operation',
      'the batch response has no result for this operation',
      'the batch response has no result for this operation',
    ]);
    expect(splitResults([{ seq: 0, status: 599 }], 1, answer)).toEqual([{ ok: true, status: 599, body: {} }]);
  });
});

describe('readBatchText', () => {
  it('hands a 200 body to the dialect as text, and keeps the shared rule for the others', () => {
    const seen: string[] = [];
    const decode = (text: string): OpResult[] => {
      seen.push(text);
      return [{ ok: true, status: 200, body: undefined, text }];
    };
    expect(readBatchText(200, '--b\r\nnot json', decode)).toEqual({
      kind: 'results',
      results: [{ ok: true, status: 200, body: undefined, text: '--b\r\nnot json' }],
    });
    expect(readBatchText(401, '', decode)).toEqual({ kind: 'refused', status: 401, body: '{}' });
    expect(readBatchText(403, 'no', decode)).toEqual({ kind: 'refused', status: 403, body: 'no' });
    expect(readBatchText(400, '', decode)).toEqual({ kind: 'rejected', status: 400, body: '{}' });
    expect(readBatchText(201, 'x', decode)).toEqual({ kind: 'rejected', status: 201, body: 'x' });
    expect(seen).toEqual(['--b\r\nnot json']);
  });
});
