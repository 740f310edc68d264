import { describe, expect, it } from 'vitest';
import { getOp } from '../testing/ops.js';
import { talkjs } from './talkjs.js';

describe('talkjs dialect', () => {
  it('splits /v1/{appId}/... into app and path', () => {
    expect(talkjs.parseTarget('/v1/app1/users/u1')).toEqual({ appId: 'app1', path: '/users/u1' });
    expect(talkjs.parseTarget('/v1/app1')).toBeUndefined();
    expect(talkjs.parseTarget('/v1/app1/')).toBeUndefined();
    expect(talkjs.parseTarget('/v2/app1/users')).toBeUndefined();
    expect(talkjs.parseTarget('/v1//users')).toBeUndefined();
  });

  it('drops the version header and what every dialect may drop, and passes any other header through', () => {
    // The version header rides as the op's api_version option; TalkJS ops carry no headers at all.
    for (const name of [
      'talkjs-rest-version',
      'traceparent',
      'x-request-id',
      'x-b3-traceid',
      'sec-fetch-mode',
    ])
      expect(talkjs.requestHeader(name), name).toBe('drop');
    for (const name of ['x-tenant', 'if-match', 'talkjs-rest-versions', 'prefer'])
      expect(talkjs.requestHeader(name), name).toBe('pass');
  });

  it('recognises the batch endpoint', () => {
    expect(talkjs.isBatchEndpoint({ appId: 'a', path: '/batch' })).toBe(true);
    expect(talkjs.isBatchEndpoint({ appId: 'a', path: '/batches' })).toBe(false);
  });

  it('encodes ops with sequence numbers, GET queries as payload and the API version as an option', () => {
    const request = talkjs.batchRequest('app', [
      { ...getOp('/users/u1', { limit: '5' }), apiVersion: '2021-02-09' },
      {
        method: 'POST',
        path: '/conversations/c1/messages',
        query: {},
        body: '[{"text":"hi"}]',
        apiVersion: undefined,
      },
      { method: 'DELETE', path: '/users/u2', query: {}, body: undefined, apiVersion: undefined },
    ]);
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/app/batch');
    expect(JSON.parse(request.body ?? '')).toEqual([
      [0, 'GET', '/users/u1', { limit: '5' }, { api_version: '2021-02-09' }],
      [1, 'POST', '/conversations/c1/messages', [{ text: 'hi' }]],
      [2, 'DELETE', '/users/u2', {}],
    ]);
  });

  it('keeps GET queries with repeated keys and writes with a query out of batches', () => {
    const target = { appId: 'a', path: '/users' };
    expect(
      talkjs.toOp({
        method: 'GET',
        target,
        query: new URLSearchParams('a=1&a=2'),
        body: undefined,
        apiVersion: undefined,
      }),
    ).toHaveProperty('passThrough');
    expect(
      talkjs.toOp({
        method: 'PUT',
        target,
        query: new URLSearchParams('x=1'),
        body: '{}',
        apiVersion: undefined,
      }),
    ).toHaveProperty('passThrough');
    expect(
      talkjs.toOp({
        method: 'GET',
        target,
        query: new URLSearchParams('limit=2'),
        body: undefined,
        apiVersion: undefined,
      }),
    ).toEqual({
      op: { method: 'GET', path: '/users', query: { limit: '2' }, body: undefined, apiVersion: undefined },
    });
  });

  it('builds the single-call form of an op', () => {
    const single = talkjs.singleRequest('app', { ...getOp('/users', { limit: '2' }), apiVersion: 'v' });
    expect(single).toEqual({
      method: 'GET',
      path: '/v1/app/users?limit=2',
      headers: { 'talkjs-rest-version': 'v' },
      body: undefined,
    });
  });

  it('maps results by sequence number whatever their order', () => {
    expect(
      talkjs.decodeResults(
        [
          [1, 404, 'nope'],
          [0, 200, { id: 'u' }],
        ],
        2,
      ),
    ).toEqual([
      { ok: true, status: 200, body: { id: 'u' } },
      { ok: true, status: 404, body: 'nope' },
    ]);
  });

  it('marks missing, duplicate, unknown and malformed results as failures for their op only', () => {
    const results = talkjs.decodeResults(
      [[0, 200, {}], [1, 200, {}], [1, 200, {}], [7, 200, {}], [2, 'x', {}], 'junk'],
      4,
    );
    expect(results.map((r) => r.ok)).toEqual([true, false, false, false]);
    expect(talkjs.decodeResults({ not: 'array' }, 2).every((r) => !r.ok)).toBe(true);
  });

  it('answers {} for a result without a body', () => {
    expect(talkjs.decodeResults([[0, 200]], 1)).toEqual([{ ok: true, status: 200, body: {} }]);
  });

  it('recognises the batch endpoint with a trailing slash, and an app id that needs decoding', () => {
    expect(talkjs.isBatchEndpoint({ appId: 'a', path: '/batch/' })).toBe(true);
    expect(talkjs.isBatchEndpoint({ appId: 'a', path: '/' })).toBe(false);
    expect(talkjs.parseTarget('/v1/my%20app/users')).toEqual({ appId: 'my app', path: '/users' });
    expect(talkjs.parseTarget('/v1/%E0%A4%A/users')).toBeUndefined();
  });

  it('says why an op cannot travel in a batch', () => {
    const target = { appId: 'a', path: '/users/u1' };
    const toOp = (method: 'GET' | 'PUT', query: string, body: string | undefined) =>
      talkjs.toOp({ method, target, query: new URLSearchParams(query), body, apiVersion: undefined });
    expect(toOp('GET', 'a=1&b=2&a=3', undefined)).toEqual({
      passThrough: 'repeated query parameter "a"',
      reason: 'query',
    });
    expect(toOp('PUT', 'x=1', '{}')).toEqual({
      passThrough: 'a query string on a write cannot travel in a batch op',
      reason: 'query',
    });
    expect(toOp('GET', '', '{}')).toEqual({ passThrough: 'a GET with a body', reason: 'body' });
    expect(toOp('PUT', '', '{"a":1}')).toEqual({
      op: { method: 'PUT', path: '/users/u1', query: {}, body: '{"a":1}', apiVersion: undefined },
    });
    expect(toOp('GET', '', undefined)).toEqual({
      op: { method: 'GET', path: '/users/u1', query: {}, body: undefined, apiVersion: undefined },
    });
  });

  it('marks the batch call and a single call with a body as JSON', () => {
    expect(talkjs.batchRequest('app', [getOp('/users')]).headers).toEqual({
      'content-type': 'application/json',
    });
    expect(
      talkjs.singleRequest('app', {
        method: 'PUT',
        path: '/users/u1',
        query: {},
        body: '{"a":1}',
        apiVersion: undefined,
      }),
    ).toEqual({
      method: 'PUT',
      path: '/v1/app/users/u1',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(talkjs.singleRequest('app', getOp('/users')).headers).toEqual({});
  });

  it('says what is wrong with each malformed result', () => {
    const none = 'the batch response has no result for this operation';
    expect(
      talkjs.decodeResults(
        [
          [0], // too short
          [1.5, 200, {}], // not an integer
          [-1, 200, {}],
          [3, 200, {}], // out of range (count 3)
          ['0', 200, {}],
          [1, 99, {}],
          [2, 600, {}],
        ],
        3,
      ),
    ).toEqual([
      { ok: false, reason: none },
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
    ]);
    expect(
      talkjs.decodeResults(
        [
          [0, 200, 'a'],
          [1, 599, 'b'],
          [2, 200.5, 'c'],
          [2, 200, 'd'],
        ],
        3,
      ),
    ).toEqual([
      { ok: true, status: 200, body: 'a' },
      { ok: true, status: 599, body: 'b' },
      { ok: false, reason: 'the batch response has two results for this operation' },
    ]);
    // A 1xx is not a final answer: written to the caller, it would leave them waiting for one.
    expect(
      talkjs.decodeResults(
        [
          [0, 100, {}],
          [1, 101, {}],
          [2, 199, {}],
        ],
        3,
      ),
    ).toEqual([
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
    ]);
    expect(talkjs.decodeResults([[0, 200.5, {}]], 1)).toEqual([
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
    ]);
    expect(talkjs.decodeResults([[0, '200', {}]], 1)).toEqual([
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
    ]);
    expect(talkjs.decodeResults('nope', 2)).toEqual([
      { ok: false, reason: 'the batch response is not an array' },
      { ok: false, reason: 'the batch response is not an array' },
    ]);
  });
});
