// outcome.ts on its own: what an upstream answer means for each op, through the real dialects.

import { describe, expect, it } from 'vitest';
import { graph } from '../dialect/graph.js';
import { talkjs } from '../dialect/talkjs.js';
import { ProxyError } from '../errors.js';
import type { BufferedResponse } from '../upstream/client.js';
import { classify, longestRetryAfter, type Outcome } from './outcome.js';
import { DEFAULT_429_PAUSE_MS } from './retry.js';

const res = (status: number, body: unknown, headers: BufferedResponse['headers'] = {}): BufferedResponse => ({
  status,
  headers,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

/** A ProxyError as a plain value, so `toEqual` compares code and message. */
const err = (e: unknown) => (e instanceof ProxyError ? { code: e.code, message: e.message } : e);

describe('classify: the HTTP rules every dialect shares', () => {
  it('a transport error fails the call with that error', () => {
    const error = new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'slow');
    expect(classify(talkjs, 'batch', 2, error)).toEqual({ kind: 'failed', error });
  });

  it('a 429 throttles the call, whichever lane, with the response kept for its Retry-After', () => {
    const r = res(429, '', { 'retry-after': '3' });
    expect(classify(talkjs, 'batch', 2, r)).toEqual({ kind: 'throttled', response: r });
    expect(classify(talkjs, 'single', 1, r)).toEqual({ kind: 'throttled', response: r });
  });

  it('a 5xx fails the call, naming the lane and the status; a 499 does not', () => {
    const batch = classify(talkjs, 'batch', 2, res(500, ''));
    expect(batch.kind).toBe('failed');
    expect(err((batch as Extract<Outcome, { kind: 'failed' }>).error)).toEqual({
      code: 'PROXY_UPSTREAM_UNAVAILABLE',
      message: 'the upstream answered the batch call with 500',
    });
    const single = classify(talkjs, 'single', 1, res(503, ''));
    expect(err((single as Extract<Outcome, { kind: 'failed' }>).error)).toEqual({
      code: 'PROXY_UPSTREAM_UNAVAILABLE',
      message: 'the upstream answered the call with 503',
    });
    expect(classify(talkjs, 'single', 1, res(499, '{"e":1}'))).toEqual({
      kind: 'answered',
      answers: [{ status: 499, body: '{"e":1}' }],
    });
  });
});

describe('classify: a single call', () => {
  it("is the caller's answer as the upstream gave it; an empty body is {}", () => {
    expect(classify(talkjs, 'single', 1, res(404, '{"error":"no"}'))).toEqual({
      kind: 'answered',
      answers: [{ status: 404, body: '{"error":"no"}' }],
    });
    expect(classify(talkjs, 'single', 1, res(200, ''))).toEqual({
      kind: 'answered',
      answers: [{ status: 200, body: '{}' }],
    });
  });

  it('carries the answer headers the dialect lets through, and none when it lets none', () => {
    const headers = {
      etag: 'W/"1"',
      location: 'https://graph.microsoft.com/v1.0/users/u1',
      connection: 'close',
    };
    const viaGraph = classify(graph, 'single', 1, res(201, '{"id":"u1"}', headers));
    expect(viaGraph).toEqual({
      kind: 'answered',
      answers: [{ status: 201, body: '{"id":"u1"}', headers: graph.answerHeaders(headers) }],
    });
    expect(Object.keys(graph.answerHeaders(headers)).sort()).toEqual(['etag', 'location']);
    const viaTalkjs = classify(talkjs, 'single', 1, res(201, '{"id":"u1"}', headers));
    expect(viaTalkjs).toEqual({ kind: 'answered', answers: [{ status: 201, body: '{"id":"u1"}' }] });
    expect('headers' in ((viaTalkjs as Extract<Outcome, { kind: 'answered' }>).answers[0] ?? {})).toBe(false);
  });
});

describe('classify: a batch call', () => {
  it('answers each op its own result, by sequence number', () => {
    const out = classify(
      talkjs,
      'batch',
      3,
      res(200, [
        [2, 404, { error: 'c' }],
        [0, 200, { name: 'a' }],
        [1, 204],
      ]),
    );
    expect(out).toEqual({
      kind: 'answered',
      answers: [
        { status: 200, body: '{"name":"a"}' },
        { status: 204, body: '{}' },
        { status: 404, body: '{"error":"c"}' },
      ],
    });
  });

  it('an op without a result, or with a broken one, gets a 502 of its own; the others their answers', () => {
    const out = classify(
      talkjs,
      'batch',
      3,
      res(200, [
        [0, 200, { n: 0 }],
        [1, 'x', {}],
      ]),
    ) as Extract<Outcome, { kind: 'answered' }>;
    expect(out.kind).toBe('answered');
    expect(out.answers[0]).toEqual({ status: 200, body: '{"n":0}' });
    expect(err(out.answers[1])).toEqual({
      code: 'PROXY_UPSTREAM_BAD_RESPONSE',
      message: 'the batch response has an invalid status for this operation',
    });
    expect(err(out.answers[2])).toEqual({
      code: 'PROXY_UPSTREAM_BAD_RESPONSE',
      message: 'the batch response has no result for this operation',
    });
  });

  it('a refused credential (401/403) answers every op with that status and body', () => {
    expect(classify(talkjs, 'batch', 2, res(401, '{"error":"bad key"}'))).toEqual({
      kind: 'answered',
      answers: [
        { kind: 'refused', status: 401, body: '{"error":"bad key"}' },
        { kind: 'refused', status: 401, body: '{"error":"bad key"}' },
      ],
    });
  });

  it('another 4xx rejects the batch as a whole: nothing ran', () => {
    expect(classify(talkjs, 'batch', 2, res(413, '{"error":"too big"}'))).toEqual({
      kind: 'rejected',
      status: 413,
      body: '{"error":"too big"}',
    });
  });

  it('Graph: a 429 inside a 200 batch is `again` with its Retry-After; a 204 op has an empty body; headers ride along', () => {
    const out = classify(
      graph,
      'batch',
      3,
      res(200, {
        responses: [
          {
            id: '1',
            status: 429,
            headers: { 'Retry-After': '7' },
            body: { error: { code: 'TooManyRequests' } },
          },
          { id: '0', status: 204 },
          { id: '2', status: 201, headers: { ETag: 'W/"2"' }, body: { id: 'x' } },
        ],
      }),
    );
    expect(out).toEqual({
      kind: 'answered',
      answers: [
        { status: 204, body: '' },
        { again: true, why: '429', retryAfter: '7' },
        { status: 201, body: '{"id":"x"}', headers: { etag: 'W/"2"' } },
      ],
    });
  });

  it('Graph: a 424 is `again` only in a serial chain the proxy built; in a parallel batch it is the answer', () => {
    const body = {
      responses: [
        { id: '0', status: 500, body: { error: { code: 'x' } } },
        { id: '1', status: 424, body: { error: { code: 'FailedDependency' } } },
      ],
    };
    const serial = classify(graph, 'batch', 2, res(200, body), 'serial') as Extract<
      Outcome,
      { kind: 'answered' }
    >;
    expect(serial.answers[1]).toEqual({ again: true, why: '424', retryAfter: undefined });
    const parallel = classify(graph, 'batch', 2, res(200, body)) as Extract<Outcome, { kind: 'answered' }>;
    expect(parallel.answers[1]).toEqual({ status: 424, body: '{"error":{"code":"FailedDependency"}}' });
  });
});

describe('longestRetryAfter', () => {
  const answered = (answers: Extract<Outcome, { kind: 'answered' }>['answers']): Outcome => ({
    kind: 'answered',
    answers,
  });

  it('is undefined for anything but an answered batch, and for one where nothing must go again', () => {
    expect(longestRetryAfter({ kind: 'rejected', status: 400, body: '{}' }, 0, 60_000)).toBeUndefined();
    expect(longestRetryAfter(answered([{ status: 200, body: '{}' }]), 0, 60_000)).toBeUndefined();
    expect(
      longestRetryAfter(answered([new ProxyError('PROXY_UPSTREAM_BAD_RESPONSE', 'x')]), 0, 60_000),
    ).toBeUndefined();
  });

  it('is the longest Retry-After of the throttled ops, capped; a throttled op without one counts the default', () => {
    const a = (retryAfter: string | undefined) => ({ again: true as const, why: '429' as const, retryAfter });
    expect(longestRetryAfter(answered([a('2'), a('5'), a('1')]), 0, 60_000)).toBe(5000);
    expect(longestRetryAfter(answered([a('2'), a('500')]), 0, 60_000)).toBe(60_000);
    expect(longestRetryAfter(answered([a(undefined)]), 0, 60_000)).toBe(DEFAULT_429_PAUSE_MS);
    expect(longestRetryAfter(answered([a('0'), { status: 200, body: '{}' }]), 0, 60_000)).toBe(0);
  });

  it("ignores a chain's 424: it says nothing about the bucket", () => {
    expect(
      longestRetryAfter(answered([{ again: true, why: '424', retryAfter: '30' }]), 0, 60_000),
    ).toBeUndefined();
    expect(
      longestRetryAfter(
        answered([
          { again: true, why: '424', retryAfter: '30' },
          { again: true, why: '429', retryAfter: '2' },
        ]),
        0,
        60_000,
      ),
    ).toBe(2000);
  });
});
