// The Graph dialect at each boundary of its parsers and guards: exact outputs (cases its mutation run,
// docs/testing.md, showed no test pinned down).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { OpRequest, OpResult } from './dialect.js';
import { input, op } from './graph.case.js';
import { graph } from './graph.js';

const request = (over: Partial<OpRequest> = {}): OpRequest => ({
  method: 'GET',
  path: '/users/u1',
  query: {},
  body: undefined,
  apiVersion: undefined,
  ...over,
});

/** The one op's result for a batch answer holding one response entry. */
function answerOf(entry: Record<string, unknown>): OpResult | undefined {
  return graph.decodeResults({ responses: [{ id: '0', status: 200, ...entry }] }, 1)[0];
}

describe('graph dialect: parseTarget and $batch', () => {
  it('needs a slash after the version: a version-like prefix without one is no target', () => {
    expect(graph.parseTarget('/betax')).toBeUndefined();
    expect(graph.parseTarget('/v1.0x')).toBeUndefined();
    expect(graph.parseTarget('/beta')).toBeUndefined();
    expect(graph.parseTarget('//users')).toBeUndefined();
    expect(graph.parseTarget('/beta/x')).toEqual({ appId: 'beta', path: '/x' });
  });

  it('takes only $batch itself as the client’s batch, not a path that starts with it', () => {
    for (const path of ['/$batchx', '/$batch/users', '/%24batch/x', '/$batch//'])
      expect(graph.isBatchEndpoint({ appId: 'v1.0', path }), path).toBe(false);
  });
});

describe('graph dialect: toOp', () => {
  it('passes a media path through with or without a trailing slash, and only when $value ends it', () => {
    for (const path of ['/users/u1/photo/$value/', '/users/u1/photo/%24VALUE/'])
      expect(graph.toOp(input({ method: 'GET', target: { appId: 'v1.0', path } })), path).toEqual({
        passThrough: 'a media ($value) body cannot travel in a batch op',
        reason: 'body',
      });
    for (const path of ['/users/u1/photo/$value/x', '/users/u1/$values', '/users/u1/$valuefoo/'])
      expect(op(graph.toOp(input({ method: 'GET', target: { appId: 'v1.0', path } }))).path, path).toBe(path);
  });

  it('drops a bare "?" and an absent query text to nothing', () => {
    expect(op(graph.toOp(input({ method: 'GET', search: '?' }))).search).toBe('');
    const { search: _none, ...noSearch } = input({ method: 'GET' });
    expect(op(graph.toOp(noSearch)).search).toBe('');
    expect(op(graph.toOp(input({ method: 'GET', search: '?$top=1' }))).search).toBe('?$top=1');
    const single = graph.singleRequest('v1.0', op(graph.toOp(input({ method: 'GET', search: '?' }))));
    expect(single.path).toBe('/v1.0/users/u1');
  });
});

describe('graph dialect: requests it builds', () => {
  it('keeps the caller’s own Content-Type on an op with a body, in a batch and alone', () => {
    const patch = request({
      method: 'PATCH',
      body: '{"a":1}',
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(JSON.parse(graph.batchRequest('v1.0', [patch]).body ?? '')).toEqual({
      requests: [
        {
          id: '0',
          method: 'PATCH',
          url: '/users/u1',
          headers: { 'content-type': 'application/merge-patch+json' },
          body: { a: 1 },
        },
      ],
    });
    expect(graph.singleRequest('v1.0', patch).headers).toEqual({
      'content-type': 'application/merge-patch+json',
    });
    // Without one, the body is JSON.
    expect(graph.singleRequest('v1.0', request({ method: 'POST', body: '{}' })).headers).toEqual({
      'content-type': 'application/json',
    });
  });

  it('builds a single call without query text when the op carries none', () => {
    expect(graph.singleRequest('beta', request())).toEqual({
      method: 'GET',
      path: '/beta/users/u1',
      headers: {},
      body: undefined,
    });
  });

  it('chains ops only when asked: the default plan is side by side', () => {
    const ops = [request(), request({ path: '/users/u2' })];
    const parsed = JSON.parse(graph.batchRequest('v1.0', ops).body ?? '') as {
      requests: Record<string, unknown>[];
    };
    expect(parsed.requests.map((r) => r.dependsOn)).toEqual([undefined, undefined]);
  });
});

describe('graph dialect: answer bodies by content type', () => {
  const body = 'a.b'; // not base64: only its content type says whether it is JSON

  it('takes application/json with parameters and any application/*+json as JSON', () => {
    for (const type of [
      'application/ld+json',
      'application/problem+json; charset=utf-8',
      ' application/json ; odata.metadata=minimal',
      'Application/JSON',
    ])
      expect(answerOf({ headers: { 'Content-Type': type }, body }), type).toEqual({
        ok: true,
        status: 200,
        body,
        headers: { 'content-type': type },
      });
  });

  it('takes other types, +json outside application/ and application/ without +json, as text', () => {
    for (const type of ['application/xml', 'application/xml+other', 'text/x+json', 'text/plain', '+json'])
      expect(answerOf({ headers: { 'Content-Type': type }, body }), type).toEqual({
        ok: true,
        status: 200,
        body: undefined,
        headers: { 'content-type': type },
        text: body,
      });
  });

  it('takes a string body without a Content-Type as JSON, and a non-string body as it is', () => {
    expect(answerOf({ body })).toEqual({ ok: true, status: 200, body, headers: {} });
    expect(answerOf({ headers: { 'Content-Type': 'text/plain' }, body: { a: 1 } })).toEqual({
      ok: true,
      status: 200,
      body: { a: 1 },
      headers: { 'content-type': 'text/plain' },
    });
    expect(answerOf({ headers: { 'Content-Type': 'text/plain' }, body: 5 })).toEqual({
      ok: true,
      status: 200,
      body: 5,
      headers: { 'content-type': 'text/plain' },
    });
  });

  it('decodes base64 with line breaks and trailing whitespace; other text stays as Graph gave it', () => {
    const text = (b: unknown) => answerOf({ headers: { 'Content-Type': 'text/plain' }, body: b });
    const hi = Buffer.from('hello, world').toString('base64'); // aGVsbG8sIHdvcmxk
    expect(text(`${hi.slice(0, 8)}\n${hi.slice(8)}`)).toMatchObject({ text: 'hello, world' });
    expect(text('aGk=\n')).toMatchObject({ text: 'hi' });
    expect(text('aGk= \r\n')).toMatchObject({ text: 'hi' });
    expect(text('aGk')).toMatchObject({ text: 'hi' });
    for (const raw of ['hello.world', 'aGk=x', 'aGk=.', 'a=b', 'aGk=\nx'])
      expect(text(raw), raw).toEqual({
        ok: true,
        status: 200,
        body: undefined,
        headers: { 'content-type': 'text/plain' },
        text: raw,
      });
  });
});

describe('graph dialect: /me from the credential', () => {
  const jwt = (claims: unknown, scheme = 'Bearer ') =>
    `${scheme}x.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  const key = (path: string, credential: string) => graph.resourceKey?.(path, credential);
  /** The documented fallback: a digest of the whole credential. */
  const digest = (credential: string) =>
    `/users/~${createHash('sha256').update(credential).digest('hex').slice(0, 32)}`;

  it('uses a digest for a credential that is not a Bearer token', () => {
    for (const credential of [
      'Basic dXNlcjpwYXNz',
      jwt({ oid: 'u-1' }, 'NotBearer '),
      jwt({ oid: 'u-1' }, 'Basic Bearer '),
      `${jwt({ oid: 'u-1' })}\nmore`,
      '',
    ])
      expect(key('/me', credential), credential).toBe(digest(credential));
  });

  it('takes the oid only when it is a string of at most 64 letters, digits and dashes', () => {
    expect(key('/me', jwt({ oid: 'A'.repeat(64) }))).toBe(`/users/${'a'.repeat(64)}`);
    expect(key('/me/x', `bearer  ${jwt({ oid: 'u-1' }).slice(7)}`)).toBe('/users/u-1/x');
    for (const claims of [
      { oid: 'A'.repeat(65) },
      { oid: 'ab/../c' },
      { oid: 'u 1' },
      { oid: '' },
      { oid: 12345 },
      { oid: ['u-1'] },
      { tid: 't' },
      ['u-1'],
      null,
      'u-1',
    ]) {
      const credential = jwt(claims);
      expect(key('/me', credential), JSON.stringify(claims)).toBe(digest(credential));
    }
  });

  it('uses a digest when the token has no payload or a payload that is not JSON', () => {
    for (const credential of ['Bearer abc', 'Bearer a..b', 'Bearer a.!!!.b', 'Bearer a.bm90IGpzb24.b'])
      expect(key('/me', credential), credential).toBe(digest(credential));
  });
});

describe('graph dialect: decoding a batch answer', () => {
  const missing = { ok: false, reason: 'the batch response has no result for this operation' };
  const noArray = { ok: false, reason: 'the batch response has no "responses" array' };
  const invalid = { ok: false, reason: 'the batch response has an invalid status for this operation' };

  it('reads a null or array body as a batch answer without responses', () => {
    expect(graph.decodeResults(null, 2)).toEqual([noArray, noArray]);
    expect(graph.decodeResults([{ responses: [] }], 1)).toEqual([noArray]);
    expect(graph.readBatchAnswer(200, 'null', 1)).toEqual({ kind: 'results', results: [noArray] });
    expect(graph.readBatchAnswer(200, 'not json', 1)).toEqual({ kind: 'results', results: [noArray] });
  });

  it('skips entries that are not objects', () => {
    expect(
      graph.decodeResults({ responses: [null, 7, 'x', ['0', 200], { id: '0', status: 204 }] }, 1),
    ).toEqual([{ ok: true, status: 204, body: undefined, headers: {} }]);
  });

  it('reads ids of several digits and ignores an id at or past the count', () => {
    const responses = [{ id: '10', status: 201, body: { n: 10 } }];
    const eleven = graph.decodeResults({ responses }, 11);
    expect(eleven[10]).toEqual({ ok: true, status: 201, body: { n: 10 }, headers: {} });
    expect(eleven.slice(0, 10)).toEqual(Array.from({ length: 10 }, () => missing));
    const exact = graph.decodeResults({ responses: [{ id: '1', status: 200 }] }, 1);
    expect(exact).toEqual([missing]);
    expect(exact).toHaveLength(1);
    expect(graph.decodeResults({ responses: [{ id: '1x', status: 200 }] }, 2)).toEqual([missing, missing]);
  });

  it('takes final statuses 200 to 599 as given, integers only (a 1xx is no answer a caller can get)', () => {
    for (const status of [200, 201, 598, 599])
      expect(graph.decodeResults({ responses: [{ id: '0', status }] }, 1), String(status)).toEqual([
        { ok: true, status, body: undefined, headers: {} },
      ]);
    for (const status of [100, 101, 199, 99, 0, 600, 200.5, '200', null])
      expect(graph.decodeResults({ responses: [{ id: '0', status }] }, 1), String(status)).toEqual([invalid]);
  });

  it('sends a 424 again only in a chain the proxy built; otherwise it is the op’s answer', () => {
    const responses = [{ id: '0', status: 424, body: { error: { code: 'failedDependency' } } }];
    const answer = { ok: true, status: 424, body: { error: { code: 'failedDependency' } }, headers: {} };
    expect(graph.decodeResults({ responses }, 1, 'serial')).toEqual([
      { ok: 'again', why: '424', retryAfter: undefined },
    ]);
    expect(graph.decodeResults({ responses }, 1, 'parallel')).toEqual([answer]);
    expect(graph.decodeResults({ responses }, 1)).toEqual([answer]);
    expect(graph.readBatchAnswer(200, JSON.stringify({ responses }), 1)).toEqual({
      kind: 'results',
      results: [answer],
    });
    expect(graph.readBatchAnswer(200, JSON.stringify({ responses }), 1, 'serial')).toEqual({
      kind: 'results',
      results: [{ ok: 'again', why: '424', retryAfter: undefined }],
    });
  });

  it('refuses on 401 and 403 with the upstream body, or {} when it sent none', () => {
    expect(graph.readBatchAnswer(403, '{"error":"no"}', 1)).toEqual({
      kind: 'refused',
      status: 403,
      body: '{"error":"no"}',
    });
    expect(graph.readBatchAnswer(403, '', 1)).toEqual({ kind: 'refused', status: 403, body: '{}' });
    expect(graph.readBatchAnswer(401, '', 1)).toEqual({ kind: 'refused', status: 401, body: '{}' });
    expect(graph.readBatchAnswer(500, '', 1)).toEqual({ kind: 'rejected', status: 500, body: '{}' });
  });
});
