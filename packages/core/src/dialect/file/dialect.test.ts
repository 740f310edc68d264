// The interpreter on a Salesforce-Composite-shaped file (string ids with a prefix, the whole path,
// headers carried and relayed, case-insensitive paths) and on each option's branches.

import { describe, expect, it } from 'vitest';
import type { BatchDialect, Method, OpInput, OpRequest } from '../dialect.js';
import { fileDialect } from './dialect.js';
import type { DialectFileInput } from './schema.js';
import { parseDialectFile } from './validate.js';

const composite: DialectFileInput = {
  name: 'composite',
  upstreamUrl: 'https://example.my.salesforce.com',
  budget: { required: 'per org' },
  maxOps: 25,
  scope: '/services/data/{version}',
  caseInsensitivePaths: true,
  throttleScope: 'credential',
  calls: { methods: ['GET', 'POST', 'PATCH', 'DELETE'], exclude: ['/composite/**'], bodyRequired: ['POST'] },
  headers: { carry: ['if-match'], pass: ['accept'], drop: ['x-sfdc-client'], relay: true },
  batch: {
    path: '/services/data/{version}/composite',
    envelope: { allOrNone: false, compositeRequest: { $: 'ops' } },
  },
  op: {
    method: { $: 'method' },
    url: { $: 'path', whole: true, query: true },
    referenceId: { $: 'id', prefix: 'op' },
    body: { $: 'body' },
    httpHeaders: { $: 'headers' },
  },
  results: {
    at: '/compositeResponse',
    match: { by: 'id', at: '/referenceId' },
    status: '/httpStatusCode',
    headers: '/httpHeaders',
    body: '/body',
  },
  again: { status: [429, 503] },
};

function dialectOf(spec: DialectFileInput): BatchDialect {
  const parsed = parseDialectFile(spec);
  if ('error' in parsed) throw new Error(parsed.error);
  return fileDialect(parsed.spec);
}

const sf = dialectOf(composite);
const input = (method: Method, over: Partial<OpInput> = {}): OpInput => ({
  method,
  target: { appId: 'v59.0', path: '/sobjects/Account/001' },
  query: new URLSearchParams(),
  search: '',
  body: undefined,
  apiVersion: undefined,
  headers: {},
  ...over,
});
const opOf = (d: BatchDialect, call: OpInput): OpRequest => {
  const built = d.toOp(call);
  if ('passThrough' in built) throw new Error(built.passThrough);
  return built.op;
};

describe('a Salesforce-Composite-shaped file', () => {
  it('names its limits and how it counts', () => {
    expect([sf.name, sf.maxOps, sf.cost, sf.throttleScope, sf.apiVersionHeader]).toEqual([
      'composite',
      25,
      'call',
      'credential',
      '',
    ]);
  });

  it('writes ops with string ids, whole paths with their query, bodies and carried headers', () => {
    const ops = [
      opOf(
        sf,
        input('GET', {
          query: new URLSearchParams('fields=Name&fields=Id'),
          search: '?fields=Name&fields=Id',
        }),
      ),
      opOf(sf, input('PATCH', { body: '{"Name":"A"}', headers: { 'if-match': '"e1"', 'x-other': 'no' } })),
    ];
    expect(sf.batchRequest('v59.0', ops)).toEqual({
      method: 'POST',
      path: '/services/data/v59.0/composite',
      headers: { 'content-type': 'application/json' },
      body:
        '{"allOrNone":false,"compositeRequest":[' +
        '{"method":"GET","url":"/services/data/v59.0/sobjects/Account/001?fields=Name&fields=Id","referenceId":"op0"},' +
        '{"method":"PATCH","url":"/services/data/v59.0/sobjects/Account/001","referenceId":"op1","body":{"Name":"A"},"httpHeaders":{"if-match":"\\"e1\\""}}]}',
    });
  });

  it('sends a single call whole, with its query, carried headers and body', () => {
    const op = opOf(sf, input('PATCH', { body: '{}', headers: { 'if-match': '"e1"' }, search: '?a=1' }));
    expect(sf.singleRequest('v59.0', op)).toEqual({
      method: 'PATCH',
      path: '/services/data/v59.0/sobjects/Account/001?a=1',
      headers: { 'if-match': '"e1"', 'content-type': 'application/json' },
      body: '{}',
    });
  });

  it('matches results by referenceId, relays their headers, and sends 429 and 503 again', () => {
    const answer = JSON.stringify({
      compositeResponse: [
        { referenceId: 'op2', httpStatusCode: 503, httpHeaders: {}, body: null },
        { referenceId: 'op1', httpStatusCode: 429, httpHeaders: { 'Retry-After': '7' }, body: [] },
        { referenceId: 'op0', httpStatusCode: 200, httpHeaders: { ETag: '"e2"' }, body: { Id: '001' } },
        { referenceId: 'op03', httpStatusCode: 200, body: {} }, // not an id the proxy wrote
        { referenceId: 'x0', httpStatusCode: 200, body: {} },
        { referenceId: 3, httpStatusCode: 200, body: {} },
        'not an entry',
      ],
    });
    expect(sf.readBatchAnswer(200, answer, 4)).toEqual({
      kind: 'results',
      results: [
        { ok: true, status: 200, body: { Id: '001' }, headers: { etag: '"e2"' } },
        { ok: 'again', why: '429', retryAfter: '7' },
        { ok: 'again', why: '424', retryAfter: undefined },
        { ok: false, reason: 'the batch response has no result for this operation' },
      ],
    });
  });

  it('relays no headers from a headers field that is not an object', () => {
    for (const httpHeaders of ['ab', ['x'], null, 3]) {
      const answer = {
        compositeResponse: [{ referenceId: 'op0', httpStatusCode: 200, httpHeaders, body: 1 }],
      };
      expect(sf.decodeResults(answer, 1)).toEqual([{ ok: true, status: 200, body: 1, headers: {} }]);
    }
  });

  it('fails every op when the answer has no list where the file says', () => {
    expect(sf.decodeResults({ compositeResponse: {} }, 2)).toEqual([
      { ok: false, reason: 'the batch response has no list of results' },
      { ok: false, reason: 'the batch response has no list of results' },
    ]);
  });

  it('refuses what it cannot carry, each with its reason', () => {
    expect(sf.toOp(input('PUT', { body: '{}' }))).toMatchObject({ reason: 'method' });
    expect(sf.toOp(input('POST'))).toMatchObject({ reason: 'body' });
    expect(sf.toOp(input('GET', { body: '{}' }))).toMatchObject({ reason: 'body' });
    expect(sf.toOp(input('POST', { body: '{}' }))).not.toHaveProperty('reason');
    expect(sf.toOp(input('DELETE'))).not.toHaveProperty('reason');
  });

  it('says what each request header does', () => {
    expect(sf.requestHeader('if-match')).toBe('carry');
    expect(sf.requestHeader('accept')).toBe('pass'); // forced, though commonly droppable
    expect(sf.requestHeader('x-sfdc-client')).toBe('drop');
    expect(sf.requestHeader('user-agent')).toBe('drop');
    expect(sf.requestHeader('x-unknown')).toBe('pass');
  });

  it('treats paths in any case as one, and passes the batch endpoint and excluded paths through', () => {
    expect(sf.parseTarget('/Services/Data/v59.0/SObjects/Account')).toEqual({
      appId: 'v59.0',
      path: '/SObjects/Account',
    });
    expect(sf.resourceKey?.('/SObjects/Account/001', 'c')).toBe('/sobjects/account/001');
    expect(sf.isBatchEndpoint({ appId: 'v59.0', path: '/composite' })).toBe(true);
    expect(sf.isBatchEndpoint({ appId: 'v59.0', path: '/Composite/' })).toBe(true);
    expect(sf.isBatchEndpoint({ appId: 'v59.0', path: '/composite/tree/Account' })).toBe(true);
    expect(sf.isBatchEndpoint({ appId: 'v59.0', path: '/sobjects' })).toBe(false);
    expect(sf.answerHeaders({ ETag: '"e"', 'content-length': '3' })).toEqual({ etag: '"e"' });
  });
});

describe('the options, branch by branch', () => {
  const plain = dialectOf({
    ...composite,
    caseInsensitivePaths: false,
    cost: 'op',
    calls: { query: 'object', queryMethods: ['GET'] },
    headers: { relay: false },
    apiVersionHeader: 'x-version',
    op: [
      { $: 'id', type: 'string' },
      { $: 'method' },
      { $: 'path' },
      { $: 'query', absent: null },
      { $: 'apiVersion' },
    ],
    results: { match: { by: 'position' }, status: '/status', body: '/body', emptyBody: 'none' },
    again: undefined,
  });

  it('keeps paths as they are when they are case-sensitive', () => {
    expect(plain.resourceKey).toBeUndefined();
    expect(plain.isBatchEndpoint({ appId: 'v1', path: '/Composite' })).toBe(false);
    expect(plain.cost).toBe('op');
  });

  it('carries a query as an object, refusing a repeated name or a query on a write', () => {
    expect(plain.toOp(input('GET', { query: new URLSearchParams('a=1&a=2') }))).toMatchObject({
      reason: 'query',
    });
    expect(plain.toOp(input('POST', { body: '{}', query: new URLSearchParams('a=1') }))).toMatchObject({
      reason: 'query',
    });
    const get = opOf(plain, input('GET', { query: new URLSearchParams('a=1&b=2'), apiVersion: '3' }));
    const bare = opOf(plain, input('DELETE'));
    expect(plain.batchRequest('v1', [get, bare]).body).toBe(
      '{"allOrNone":false,"compositeRequest":[["0","GET","/sobjects/Account/001",{"a":"1","b":"2"},"3"],["1","DELETE","/sobjects/Account/001",null]]}',
    );
    expect(plain.singleRequest('v1', get)).toEqual({
      method: 'GET',
      path: '/services/data/v1/sobjects/Account/001?a=1&b=2',
      headers: { 'x-version': '3' },
      body: undefined,
    });
    expect(plain.requestHeader('x-version')).toBe('drop');
  });

  it('matches results by position, fills in a missing body, relays no header and sends nothing again', () => {
    const answer =
      '[{"status":429,"headers":{"retry-after":"1"}},{"status":201,"body":{"b":1},"headers":{"etag":"x"}}]';
    expect(plain.readBatchAnswer(200, answer, 3)).toEqual({
      kind: 'results',
      results: [
        { ok: true, status: 429, body: 'none' },
        { ok: true, status: 201, body: { b: 1 } },
        { ok: false, reason: 'the batch response has no result for this operation' },
      ],
    });
    expect(plain.answerHeaders({ etag: 'x' })).toEqual({});
  });

  it('reads a refused or rejected batch as every dialect does', () => {
    expect(plain.readBatchAnswer(401, '', 1)).toEqual({ kind: 'refused', status: 401, body: '{}' });
    expect(plain.readBatchAnswer(400, 'no', 1)).toEqual({ kind: 'rejected', status: 400, body: 'no' });
  });
});
