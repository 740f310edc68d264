import { describe, expect, it } from 'vitest';
import type { OpInput, OpRequest } from './dialect.js';
import { boundaryFor, googleBatch } from './google-batch.js';

const input = (over: Partial<OpInput> & Pick<OpInput, 'method'>): OpInput => ({
  target: { appId: 'gmail/v1', path: '/users/me/messages/m1' },
  query: new URLSearchParams(),
  body: undefined,
  apiVersion: undefined,
  headers: {},
  search: '',
  ...over,
});

function op(over: Partial<OpInput> & Pick<OpInput, 'method'>): OpRequest {
  const built = googleBatch.toOp(input(over));
  if ('passThrough' in built) throw new Error(built.passThrough);
  return built.op;
}

const B = 'batch_x';
const context = (type = `multipart/mixed; boundary=${B}`) => ({ ops: [], headers: { 'content-type': type } });

/** A 200 answer of these parts (each `[content-id, nested response]`) read for `count` ops. */
function read(parts: ReadonlyArray<readonly [string | undefined, string]>, count: number, type?: string) {
  const body = `${parts
    .map(
      ([id, http]) =>
        `--${B}\r\nContent-Type: application/http\r\n${id === undefined ? '' : `Content-ID: ${id}\r\n`}\r\n${http}\r\n`,
    )
    .join('')}--${B}--\r\n`;
  const answer = googleBatch.readBatchAnswer(200, body, count, 'parallel', context(type));
  if (answer.kind !== 'results') throw new Error(answer.kind);
  return answer.results;
}

const ok = (body = '{"n":1}', status = '200 OK') =>
  `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=UTF-8\r\nETag: "e"\r\n\r\n${body}`;

describe('google-batch targets', () => {
  it.each([
    ['/gmail/v1/users/me/messages', { appId: 'gmail/v1', path: '/users/me/messages' }],
    ['/drive/v3/files/abc', { appId: 'drive/v3', path: '/files/abc' }],
    ['/storage/v1beta2/b', { appId: 'storage/v1beta2', path: '/b' }],
    ['/batch/gmail/v1', { appId: 'gmail/v1', path: '' }],
  ])('reads %s', (path, target) => {
    expect(googleBatch.parseTarget(path)).toEqual(target);
  });

  it.each([
    '/gmail/v1',
    '/gmail',
    '/',
    '/Gmail/v1/users',
    '/gmail/1/users',
    '/gmail/V1/users',
    '/9mail/v1/users',
    '/upload/drive/v3/files',
    '/batch/gmail',
    '/batch/gmail/v1/users',
    '/batch',
    '/admin/directory/v1/users',
  ])('is no Google call: %s', (path) => {
    expect(googleBatch.parseTarget(path)).toBeUndefined();
  });

  it('knows its batch endpoint by its empty path below the scope', () => {
    const batch = googleBatch.parseTarget('/batch/drive/v3');
    expect(batch && googleBatch.isBatchEndpoint(batch)).toBe(true);
    const call = googleBatch.parseTarget('/drive/v3/batch');
    expect(call && googleBatch.isBatchEndpoint(call)).toBe(false);
  });
});

describe('google-batch request headers and ops', () => {
  it.each([
    ['if-match', 'carry'],
    ['if-none-match', 'carry'],
    ['accept-language', 'carry'],
    ['x-goog-api-client', 'drop'],
    ['user-agent', 'drop'],
    ['authorization', 'drop'],
    ['x-goog-user-project', 'pass'],
    ['x-custom', 'pass'],
  ])('%s: %s', (name, rule) => {
    expect(googleBatch.requestHeader(name)).toBe(rule);
  });

  it('passes a media download through (alt=media): batching does not carry it', () => {
    const query = new URLSearchParams('alt=media');
    expect(googleBatch.toOp(input({ method: 'GET', query, search: '?alt=media' }))).toMatchObject({
      reason: 'query',
    });
    expect(op({ method: 'GET', query: new URLSearchParams('alt=json'), search: '?alt=json' }).search).toBe(
      '?alt=json',
    );
  });

  it('carries only the carried headers, and the query text verbatim', () => {
    const built = op({
      method: 'GET',
      headers: { 'if-none-match': '"1"', 'x-goog-api-client': 'gl-node' },
      search: '?format=metadata&metadataHeaders=From&metadataHeaders=To',
    });
    expect(built.headers).toEqual({ 'if-none-match': '"1"' });
    expect(built.search).toBe('?format=metadata&metadataHeaders=From&metadataHeaders=To');
    expect(op({ method: 'GET', search: '?' }).search).toBe('');
  });

  it('builds the documented multipart body: one application/http part per op, ids by sequence', () => {
    const ops = [
      op({ method: 'GET', search: '?format=raw', headers: { 'if-none-match': '"1"' } }),
      op({ method: 'POST', body: '{"a": 1}', target: { appId: 'gmail/v1', path: '/users/me/labels' } }),
    ];
    const request = googleBatch.batchRequest('gmail/v1', ops);
    const boundary = /^multipart\/mixed; boundary=(batch_proxy_[0-9a-f]{24})$/.exec(
      request.headers['content-type'] ?? '',
    )?.[1];
    expect(boundary).toBeDefined();
    expect(request).toMatchObject({ method: 'POST', path: '/batch/gmail/v1' });
    expect(Object.keys(request.headers)).toEqual(['content-type']);
    expect(request.body).toBe(
      `--${boundary}\r\nContent-Type: application/http\r\nContent-ID: <item-0>\r\n\r\n` +
        'GET /gmail/v1/users/me/messages/m1?format=raw HTTP/1.1\r\nif-none-match: "1"\r\n\r\n\r\n' +
        `--${boundary}\r\nContent-Type: application/http\r\nContent-ID: <item-1>\r\n\r\n` +
        'POST /gmail/v1/users/me/labels HTTP/1.1\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{"a": 1}\r\n' +
        `--${boundary}--\r\n`,
    );
  });

  it('never picks a boundary that occurs in an op', () => {
    const tokens = ['a', 'b', 'c'];
    const next = () => tokens.shift() ?? 'z';
    expect(boundaryFor(['x batch_proxy_a y', 'batch_proxy_b'], next)).toBe('batch_proxy_c');
    expect(boundaryFor([], () => 'q')).toBe('batch_proxy_q');
  });

  it('picks a new boundary per batch', () => {
    const a = googleBatch.batchRequest('gmail/v1', [op({ method: 'GET' })]).headers['content-type'];
    const b = googleBatch.batchRequest('gmail/v1', [op({ method: 'GET' })]).headers['content-type'];
    expect(a).not.toBe(b);
  });

  it('sends a single call to /{api}/{version}/… with its query and headers', () => {
    const single = googleBatch.singleRequest(
      'drive/v3',
      op({ method: 'PATCH', body: '{}', search: '?fields=id', headers: { 'if-match': '"2"' } }),
    );
    expect(single).toEqual({
      method: 'PATCH',
      path: '/drive/v3/users/me/messages/m1?fields=id',
      headers: { 'if-match': '"2"', 'content-type': 'application/json; charset=UTF-8' },
      body: '{}',
    });
  });

  it('says how Google counts and throttles', () => {
    expect([googleBatch.cost, googleBatch.throttleScope, googleBatch.maxOps]).toEqual([
      'op',
      'credential',
      100,
    ]);
  });
});

describe('google-batch answers', () => {
  it('matches parts by Content-ID, with or without brackets, and relays their headers', () => {
    const results = read(
      [
        ['response-item-1', ok('{"n":2}', '201 Created')],
        ['<response-item-0>', ok()],
      ],
      2,
    );
    expect(results).toEqual([
      {
        ok: true,
        status: 200,
        body: { n: 1 },
        headers: { 'content-type': 'application/json; charset=UTF-8', etag: '"e"' },
      },
      expect.objectContaining({ ok: true, status: 201, body: { n: 2 } }),
    ]);
  });

  it('reads a JSON subtype as JSON, an empty body as none, any other type as text', () => {
    const results = read(
      [
        ['<response-item-0>', 'HTTP/1.1 200 OK\r\nContent-Type: application/problem+json\r\n\r\n{"p":1}'],
        ['<response-item-1>', 'HTTP/1.1 204 No Content\r\n\r\n'],
        ['<response-item-2>', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello'],
        ['<response-item-3>', 'HTTP/1.1 200 OK\r\n\r\nno type'],
      ],
      4,
    );
    expect(results[0]).toMatchObject({ ok: true, body: { p: 1 } });
    expect(results[1]).toEqual({ ok: true, status: 204, body: undefined, headers: {} });
    expect(results[2]).toMatchObject({ ok: true, status: 200, text: 'hello' });
    expect(results[3]).toMatchObject({ ok: true, status: 200, text: 'no type' });
  });

  it('sends a throttled part again with its Retry-After, with or without one', () => {
    const results = read(
      [
        ['<response-item-0>', 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n{}'],
        ['<response-item-1>', 'HTTP/1.1 429 Too Many Requests\r\n\r\n'],
      ],
      2,
    );
    expect(results).toEqual([
      { ok: 'again', why: '429', retryAfter: '3' },
      { ok: 'again', why: '429', retryAfter: undefined },
    ]);
  });

  it('sends a part refused 403 for a per-second rate limit again; any other 403 is its answer', () => {
    const forbidden = (reason: unknown, retry = '') =>
      `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n${retry}\r\n${JSON.stringify({
        error: { code: 403, errors: [{ domain: 'usageLimits', reason }] },
      })}`;
    const results = read(
      [
        ['<response-item-0>', forbidden('userRateLimitExceeded', 'Retry-After: 5\r\n')],
        ['<response-item-1>', forbidden('rateLimitExceeded')],
        ['<response-item-2>', forbidden('dailyLimitExceeded')],
        ['<response-item-3>', forbidden(undefined)],
        ['<response-item-4>', 'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\nnull'],
        [
          '<response-item-5>',
          'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{"error":{"errors":[null]}}',
        ],
        ['<response-item-6>', ok(JSON.stringify({ error: { errors: [{ reason: 'rateLimitExceeded' }] } }))],
      ],
      7,
    );
    expect(results.slice(0, 2)).toEqual([
      { ok: 'again', why: '429', retryAfter: '5' },
      { ok: 'again', why: '429', retryAfter: undefined },
    ]);
    for (const r of results.slice(2, 6)) expect(r).toMatchObject({ ok: true, status: 403 });
    expect(results[6]).toMatchObject({ ok: true, status: 200 });
  });

  it('fails only the op whose part is malformed: no or unknown Content-ID, a bad status line, bad JSON', () => {
    const results = read(
      [
        [undefined, ok()],
        ['<item-1>', ok()],
        ['<response-item-7>', ok()],
        ['<response-item-01>', ok()],
        ['<response-item-1>', 'HTTP/2 200\r\n\r\n{}'],
        ['<response-item-2>', ok('{not json')],
        ['<response-item-3>', ok()],
        ['<response-item-3>', ok()],
        ['<response-item-4>', ok()],
      ],
      6,
    );
    expect(results[0]).toEqual({ ok: false, reason: 'the batch response has no result for this operation' });
    expect(results[1]).toMatchObject({ ok: false, reason: expect.stringContaining('invalid status') });
    expect(results[2]).toMatchObject({ ok: false, reason: expect.stringContaining('invalid JSON') });
    expect(results[3]).toMatchObject({ ok: false, reason: expect.stringContaining('two results') });
    expect(results[4]).toMatchObject({ ok: true, status: 200 });
    expect(results[5]).toMatchObject({ ok: false, reason: expect.stringContaining('no result') });
  });

  it('fails every op when the answer has no boundary or no parts', () => {
    const noType = googleBatch.readBatchAnswer(200, `--${B}\r\n\r\n${ok()}\r\n--${B}--`, 2, 'parallel', {
      ops: [],
      headers: {},
    });
    const wrongType = read([['<response-item-0>', ok()]], 1, 'application/json');
    const noParts = googleBatch.readBatchAnswer(200, 'plain text', 1, 'parallel', context());
    for (const results of [noType.kind === 'results' ? noType.results : [], wrongType]) {
      expect(results.length).toBeGreaterThan(0);
      for (const r of results)
        expect(r).toMatchObject({ ok: false, reason: expect.stringContaining('boundary') });
    }
    expect(noParts).toEqual({
      kind: 'results',
      results: [{ ok: false, reason: 'the batch response has no multipart parts' }],
    });
    expect(googleBatch.decodeResults({ not: 'text' }, 1, 'parallel', context())).toEqual([
      { ok: false, reason: 'the batch response has no multipart parts' },
    ]);
    expect(googleBatch.decodeResults('x', 1)).toHaveLength(1);
  });

  it('reads the boundary of a repeated or array-valued Content-Type as none', () => {
    const results = googleBatch.decodeResults(`--${B}--`, 1, 'parallel', {
      ops: [],
      headers: { 'content-type': [`multipart/mixed; boundary=${B}`] },
    });
    expect(results).toEqual([
      { ok: false, reason: 'the batch response is not multipart/mixed with a boundary' },
    ]);
  });
});
