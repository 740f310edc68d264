import { describe, expect, it } from 'vitest';
import { classify } from '../batcher/outcome.js';
import type { OpInput, OpRequest } from './dialect.js';
import { input, op } from './graph.case.js';
import { graph } from './graph.js';

describe('graph dialect', () => {
  it('splits /{version}/... into the version (the scope) and the path below it', () => {
    expect(graph.parseTarget('/v1.0/users/u1')).toEqual({ appId: 'v1.0', path: '/users/u1' });
    expect(graph.parseTarget('/beta/me/messages')).toEqual({ appId: 'beta', path: '/me/messages' });
    expect(graph.parseTarget('/v1.0')).toBeUndefined();
    expect(graph.parseTarget('/v1.0/')).toBeUndefined();
    expect(graph.parseTarget('/v2.0/users')).toBeUndefined();
    expect(graph.parseTarget('/v1/app/users')).toBeUndefined();
  });

  it('recognises $batch, encoded or not, as the client’s own batch', () => {
    for (const path of ['/$batch', '/%24batch', '/$BATCH', '/$batch/'])
      expect(graph.isBatchEndpoint({ appId: 'v1.0', path }), path).toBe(true);
    expect(graph.isBatchEndpoint({ appId: 'v1.0', path: '/batch' })).toBe(false);
    expect(graph.isBatchEndpoint({ appId: 'v1.0', path: '/users/$batch' })).toBe(false);
  });

  it('carries the headers Graph reads per request, drops transport ones, passes the rest', () => {
    for (const name of [
      'content-type',
      'if-match',
      'if-none-match',
      'consistencylevel',
      'prefer',
      'accept-language',
      'client-request-id',
      'x-ms-throttle-priority',
    ])
      expect(graph.requestHeader(name), name).toBe('carry');
    for (const name of ['authorization', 'accept', 'user-agent', 'traceparent', 'x-b3-traceid'])
      expect(graph.requestHeader(name), name).toBe('drop');
    for (const name of ['cookie', 'range', 'x-anchormailbox', 'if-modified-since'])
      expect(graph.requestHeader(name), name).toBe('pass');
  });

  it('keeps the query text verbatim and carries only carried headers', () => {
    const built = op(
      graph.toOp(
        input({
          method: 'GET',
          target: { appId: 'v1.0', path: '/users' },
          search: '?$filter=startswith(displayName,%27a%27)&$count=true&$select=id&$select=mail',
          headers: { consistencylevel: 'eventual', cookie: 'x=1' },
        }),
      ),
    );
    expect(built).toEqual({
      method: 'GET',
      path: '/users',
      query: {},
      body: undefined,
      apiVersion: undefined,
      headers: { consistencylevel: 'eventual' },
      search: '?$filter=startswith(displayName,%27a%27)&$count=true&$select=id&$select=mail',
    });
  });

  it('passes through what Graph would refuse as a whole batch or carry as base64', () => {
    const why = (i: OpInput) => {
      const built = graph.toOp(i);
      return 'passThrough' in built ? built.passThrough : 'op';
    };
    expect(why(input({ method: 'POST' }))).toMatch(/without a body/);
    expect(why(input({ method: 'PATCH' }))).toMatch(/without a body/);
    expect(why(input({ method: 'PUT' }))).toMatch(/without a body/);
    expect(why(input({ method: 'GET', body: '{}' }))).toMatch(/GET with a body/);
    expect(why(input({ method: 'GET', target: { appId: 'v1.0', path: '/users/u1/photo/$value' } }))).toMatch(
      /media/,
    );
    expect(why(input({ method: 'DELETE' }))).toBe('op');
    expect(why(input({ method: 'PATCH', body: '{}', headers: { 'content-type': 'application/json' } }))).toBe(
      'op',
    );
  });

  it('encodes ids 0..n-1, url with query, carried headers, and each body spliced in as received', () => {
    const ops = [
      op(graph.toOp(input({ method: 'GET', target: { appId: 'v1.0', path: '/me' }, search: '?$select=id' }))),
      op(
        graph.toOp(
          input({
            method: 'PATCH',
            body: '{ "jobTitle" : "x" }',
            headers: { 'content-type': 'application/json', 'if-match': 'W/"1"' },
          }),
        ),
      ),
      // A body whose caller sent no Content-Type still gets one: Graph refuses the batch otherwise.
      { method: 'POST', path: '/users', query: {}, body: '{"a":1}', apiVersion: undefined } as OpRequest,
      op(graph.toOp(input({ method: 'DELETE', target: { appId: 'v1.0', path: '/users/u2' } }))),
    ];
    const request = graph.batchRequest('beta', ops);
    expect(request).toMatchObject({
      method: 'POST',
      path: '/beta/$batch',
      headers: { 'content-type': 'application/json' },
    });
    expect(request.body).toBe(
      '{"requests":[' +
        '{"id":"0","method":"GET","url":"/me?$select=id"},' +
        '{"id":"1","method":"PATCH","url":"/users/u1","headers":{"content-type":"application/json","if-match":"W/\\"1\\""},"body":{ "jobTitle" : "x" }},' +
        '{"id":"2","method":"POST","url":"/users","headers":{"content-type":"application/json"},"body":{"a":1}},' +
        '{"id":"3","method":"DELETE","url":"/users/u2"}' +
        ']}',
    );
    expect(JSON.parse(request.body ?? '').requests).toHaveLength(4);
  });

  it('sends a single call under the version with the query and carried headers', () => {
    const single = graph.singleRequest(
      'v1.0',
      op(
        graph.toOp(
          input({
            method: 'PATCH',
            body: '{}',
            search: '?x=1',
            headers: { 'content-type': 'application/json', prefer: 'return=representation' },
          }),
        ),
      ),
    );
    expect(single).toEqual({
      method: 'PATCH',
      path: '/v1.0/users/u1?x=1',
      headers: { 'content-type': 'application/json', prefer: 'return=representation' },
      body: '{}',
    });
  });

  it('maps answers by id in any order, with each op’s own headers and no body for a 204', () => {
    const results = graph.decodeResults(
      {
        responses: [
          { id: '2', status: 204, headers: { 'Cache-Control': 'no-cache' } },
          {
            id: '0',
            status: 201,
            headers: {
              Location: 'https://graph.microsoft.com/v1.0/users/n1',
              ETag: 'W/"abc"',
              'Content-Type': 'application/json;odata.metadata=minimal',
              'Content-Length': '999',
              Connection: 'close',
            },
            body: { id: 'n1' },
          },
          { id: '1', status: 404, body: { error: { code: 'Request_ResourceNotFound' } } },
        ],
      },
      3,
    );
    expect(results).toEqual([
      {
        ok: true,
        status: 201,
        body: { id: 'n1' },
        headers: {
          location: 'https://graph.microsoft.com/v1.0/users/n1',
          etag: 'W/"abc"',
          'content-type': 'application/json;odata.metadata=minimal',
        },
      },
      { ok: true, status: 404, body: { error: { code: 'Request_ResourceNotFound' } }, headers: {} },
      { ok: true, status: 204, body: undefined, headers: { 'cache-control': 'no-cache' } },
    ]);
  });

  it('marks a 429 inside a 200 batch as not executed, with its Retry-After', () => {
    const results = graph.decodeResults(
      {
        responses: [
          {
            id: '0',
            status: 429,
            headers: { 'Retry-After': '7' },
            body: { error: { code: 'TooManyRequests' } },
          },
          { id: '1', status: 429, body: {} },
          { id: '2', status: 200, body: {} },
        ],
      },
      3,
    );
    expect(results.slice(0, 2)).toEqual([
      { ok: 'again', why: '429', retryAfter: '7' },
      { ok: 'again', why: '429', retryAfter: undefined },
    ]);
    expect(results[2]).toMatchObject({ ok: true, status: 200 });
  });

  it('turns missing, duplicate, unknown and invalid answers into per-op errors', () => {
    const results = graph.decodeResults(
      {
        responses: [
          { id: '0', status: 200, body: {} },
          { id: '0', status: 200, body: {} },
          { id: '1', status: 'ok' },
          { id: '7', status: 200 },
          { id: '01', status: 200 },
          { id: 2, status: 200 },
          'junk',
        ],
      },
      3,
    );
    expect(results).toEqual([
      { ok: false, reason: 'the batch response has two results for this operation' },
      { ok: false, reason: 'the batch response has an invalid status for this operation' },
      { ok: false, reason: 'the batch response has no result for this operation' },
    ]);
    expect(graph.decodeResults([], 2)).toEqual([
      { ok: false, reason: 'the batch response has no "responses" array' },
      { ok: false, reason: 'the batch response has no "responses" array' },
    ]);
  });

  it('reads a refused, a rejected and an answered batch', () => {
    expect(graph.readBatchAnswer(401, '{"error":{}}', 2)).toEqual({
      kind: 'refused',
      status: 401,
      body: '{"error":{}}',
    });
    expect(graph.readBatchAnswer(400, '', 2)).toEqual({ kind: 'rejected', status: 400, body: '{}' });
    expect(graph.readBatchAnswer(200, 'not json', 1)).toEqual({
      kind: 'results',
      results: [{ ok: false, reason: 'the batch response has no "responses" array' }],
    });
  });

  it('relays a single call’s answer headers except hop-by-hop ones and the proxy’s own', () => {
    expect(
      graph.answerHeaders({
        location: 'https://graph.microsoft.com/v1.0/users/n1',
        etag: 'W/"1"',
        'content-length': '10',
        'transfer-encoding': 'chunked',
        'x-request-id': 'theirs',
        'set-cookie': ['a=1', 'b=2'],
        'x-bad': 'a\r\nb',
        'x-none': undefined,
      }),
    ).toEqual({
      location: 'https://graph.microsoft.com/v1.0/users/n1',
      etag: 'W/"1"',
      'set-cookie': 'a=1, b=2',
    });
  });

  it('orders /me as the caller’s own user: by the token’s oid, else a digest of the credential', () => {
    const jwt = (claims: object) =>
      `Bearer x.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
    const key = (path: string, credential: string) => graph.resourceKey?.(path, credential);
    expect(key('/me/messages', jwt({ oid: 'u-1', tid: 't' }))).toBe('/users/u-1/messages');
    expect(key('/me', jwt({ oid: 'u-1' }))).toBe('/users/u-1');
    expect(key('/users/u-1', jwt({ oid: 'u-1' }))).toBe('/users/u-1');
    expect(key('/messages', 'Bearer a')).toBe('/messages');
    // Opaque tokens: two users never share a /me, one user always does.
    const a = key('/me/messages', 'Bearer opaque-a');
    expect(a).toMatch(/^\/users\/~[0-9a-f]{32}\/messages$/);
    expect(key('/me/messages', 'Bearer opaque-a')).toBe(a);
    expect(key('/me/messages', 'Bearer opaque-b')).not.toBe(a);
    expect(key('/me', jwt({ oid: '../x' }))).toMatch(/^\/users\/~/);
    expect(key('/meetings', 'Bearer a')).toBe('/meetings');
  });

  it('folds the case of every path it orders by: Graph paths are case-insensitive', () => {
    const jwt = `Bearer x.${Buffer.from(JSON.stringify({ oid: 'AB-12' })).toString('base64url')}.sig`;
    const key = (path: string) => graph.resourceKey?.(path, jwt);
    expect(key('/ME/Messages')).toBe('/users/ab-12/messages');
    expect(key('/me/messages')).toBe('/users/ab-12/messages');
    expect(key('/Users/AB-12/Messages')).toBe('/users/ab-12/messages');
    expect(key('/Me')).toBe('/users/ab-12');
    expect(key('/MEetings')).toBe('/meetings');
  });

  it('decodes a base64 body that is not JSON back to its text; a binary one is that op’s 502', () => {
    const csv = 'a,b\n1,2\n';
    const [text, binary, json, plain] = graph.decodeResults(
      {
        responses: [
          {
            id: '0',
            status: 200,
            headers: { 'Content-Type': 'text/csv' },
            body: Buffer.from(csv).toString('base64'),
          },
          {
            id: '1',
            status: 200,
            headers: { 'Content-Type': 'image/png' },
            body: Buffer.from([0x89, 0x50, 0xff, 0xfe]).toString('base64'),
          },
          { id: '2', status: 200, headers: { 'Content-Type': 'application/json' }, body: 'a JSON string' },
          { id: '3', status: 200, headers: { 'Content-Type': 'text/plain' }, body: 'plain, not base64!' },
        ],
      },
      4,
    );
    expect(
      graph.decodeResults(
        {
          responses: [
            { id: '0', status: 200, headers: { 'Content-Type': 'text/plain' }, body: 'plain, not base64!' },
          ],
        },
        1,
      ),
    ).toMatchObject([{ ok: true, text: 'plain, not base64!' }]);
    expect(text).toEqual({
      ok: true,
      status: 200,
      body: undefined,
      headers: { 'content-type': 'text/csv' },
      text: csv,
    });
    expect(binary).toMatchObject({ ok: false, reason: expect.stringMatching(/binary body.*x-batch-bypass/) });
    expect(json).toMatchObject({ ok: true, body: 'a JSON string' });
    expect(plain).toMatchObject({ ok: true, text: 'plain, not base64!' });
    const outcome = classify(graph, 'batch', 1, {
      status: 200,
      headers: {},
      body: JSON.stringify({
        responses: [
          {
            id: '0',
            status: 200,
            headers: { 'Content-Type': 'text/plain' },
            body: Buffer.from('hi').toString('base64'),
          },
        ],
      }),
    });
    expect(outcome).toEqual({
      kind: 'answered',
      answers: [{ status: 200, body: 'hi', headers: { 'content-type': 'text/plain' } }],
    });
  });
});
