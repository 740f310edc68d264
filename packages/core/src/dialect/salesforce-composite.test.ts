// dialects/salesforce-composite.json, beyond the conformance suite: what batches (sObject resources
// only; queries and other resources go alone), the composite it writes (allOrNone false, request
// order, referenceIds Salesforce accepts, full urls with their query), which headers travel inside a
// subrequest, and how its answer is read (by referenceId, in any order, a 204's null body).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Method, OpInput, OpRequest } from './dialect.js';
import { fileDialect } from './file/dialect.js';
import { parseDialectFile } from './file/validate.js';

const parsed = parseDialectFile(
  JSON.parse(
    readFileSync(new URL('../../../../dialects/salesforce-composite.json', import.meta.url), 'utf8'),
  ),
);
if ('error' in parsed) throw new Error(parsed.error);
const salesforce = fileDialect(parsed.spec);

const input = (method: Method, path: string, over: Partial<OpInput> = {}): OpInput => ({
  method,
  target: { appId: 'v62.0', path },
  query: new URLSearchParams(over.search ?? ''),
  body: undefined,
  apiVersion: undefined,
  headers: {},
  search: '',
  ...over,
});

const opOf = (call: OpInput): OpRequest => {
  const built = salesforce.toOp(call);
  if ('passThrough' in built) throw new Error(built.passThrough);
  return built.op;
};

const goesAlone = (path: string) => salesforce.isBatchEndpoint({ appId: 'v62.0', path });

describe('dialects/salesforce-composite.json', () => {
  it('takes the API version as its scope', () => {
    expect(salesforce.parseTarget('/services/data/v62.0/sobjects/Account/001')).toEqual({
      appId: 'v62.0',
      path: '/sobjects/Account/001',
    });
    expect(salesforce.parseTarget('/services/data/v62.0')).toBeUndefined();
    expect(salesforce.parseTarget('/services/apexrest/x')).toBeUndefined();
  });

  it.each([
    '/sobjects',
    '/sobjects/Account',
    '/sobjects/Account/001R0000000001AAA',
    '/sobjects/Account/describe',
    '/sobjects/Account/ExtId__c/42',
  ])('batches the sObject resource %s', (path) => {
    expect(goesAlone(path)).toBe(false);
  });

  it.each([
    '/query',
    '/query/01gR0000000001-2000',
    '/queryAll',
    '/composite',
    '/composite/sobjects',
    '/composite/batch',
    '/limits',
    '/search',
    '/tooling/sobjects',
    '/sobject',
  ])('sends %s alone: not an sObject resource, or a kind a composite limits to 5', (path) => {
    expect(goesAlone(path)).toBe(true);
  });

  it('is the documented maximum of 25 subrequests, counted as one API call', () => {
    expect(salesforce.maxOps).toBe(25);
    expect(salesforce.cost).toBe('call');
  });

  it('writes a composite: allOrNone false, request order, whole urls with their query, Salesforce referenceIds', () => {
    const ops = [
      opOf(input('GET', '/sobjects/Account/001A', { search: '?fields=Name,Industry' })),
      opOf(
        input('PATCH', '/sobjects/Account/001B', { body: '{"Name":"x"}', headers: { 'if-match': '"e1"' } }),
      ),
      opOf(input('DELETE', '/sobjects/Contact/003C')),
    ];
    const request = salesforce.batchRequest('v62.0', ops);
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/services/data/v62.0/composite');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body ?? '')).toEqual({
      allOrNone: false,
      collateSubrequests: false,
      compositeRequest: [
        {
          method: 'GET',
          url: '/services/data/v62.0/sobjects/Account/001A?fields=Name,Industry',
          referenceId: 'batchproxy_op0',
        },
        {
          method: 'PATCH',
          url: '/services/data/v62.0/sobjects/Account/001B',
          referenceId: 'batchproxy_op1',
          body: { Name: 'x' },
          httpHeaders: { 'if-match': '"e1"' },
        },
        {
          method: 'DELETE',
          url: '/services/data/v62.0/sobjects/Contact/003C',
          referenceId: 'batchproxy_op2',
        },
      ],
    });
    // Documented: "The referenceIds must not contain anything besides letters, numbers, and underscores".
    for (const r of JSON.parse(request.body ?? '').compositeRequest)
      expect(r.referenceId).toMatch(/^[A-Za-z0-9_]+$/);
  });

  it.each([
    'if-match',
    'if-none-match',
    'if-modified-since',
    'if-unmodified-since',
    'sforce-auto-assign',
    'sforce-duplicate-rule-header',
  ])('carries %s inside the subrequest', (name) => {
    expect(salesforce.requestHeader(name)).toBe('carry');
  });

  it('never carries the headers a subrequest inherits (Accept, Authorization, Content-Type)', () => {
    for (const name of ['accept', 'authorization', 'content-type'])
      expect(salesforce.requestHeader(name)).toBe('drop');
    expect(salesforce.requestHeader('sforce-call-options')).toBe('drop');
    expect(salesforce.requestHeader('sforce-query-options')).toBe('pass');
  });

  it('sends a DELETE or GET with a body alone', () => {
    expect(salesforce.toOp(input('DELETE', '/sobjects/Account/1', { body: '{}' }))).toMatchObject({
      reason: 'body',
    });
    expect(salesforce.toOp(input('GET', '/sobjects/Account/1', { body: '{}' }))).toMatchObject({
      reason: 'body',
    });
  });

  it('reads results by referenceId in any order, with their headers; a 204 keeps its null body', () => {
    const answer = {
      compositeResponse: [
        { body: null, httpHeaders: {}, httpStatusCode: 204, referenceId: 'batchproxy_op1' },
        {
          body: { id: '001N', success: true, errors: [] },
          httpHeaders: { Location: '/services/data/v62.0/sobjects/Account/001N' },
          httpStatusCode: 201,
          referenceId: 'batchproxy_op0',
        },
        {
          body: [{ errorCode: 'NOT_FOUND', message: 'gone' }],
          httpHeaders: {},
          httpStatusCode: 404,
          referenceId: 'batchproxy_op2',
        },
      ],
    };
    const read = salesforce.readBatchAnswer(200, JSON.stringify(answer), 3);
    expect(read).toEqual({
      kind: 'results',
      results: [
        {
          ok: true,
          status: 201,
          body: { id: '001N', success: true, errors: [] },
          headers: { location: '/services/data/v62.0/sobjects/Account/001N' },
        },
        { ok: true, status: 204, body: null, headers: {} },
        { ok: true, status: 404, body: [{ errorCode: 'NOT_FOUND', message: 'gone' }], headers: {} },
      ],
    });
  });

  it('ignores a referenceId it did not send (another prefix, or the bare prefix)', () => {
    const answer = {
      compositeResponse: [
        { body: {}, httpHeaders: {}, httpStatusCode: 200, referenceId: 'op0' },
        { body: {}, httpHeaders: {}, httpStatusCode: 200, referenceId: 'batchproxy_op' },
      ],
    };
    const read = salesforce.readBatchAnswer(200, JSON.stringify(answer), 1);
    expect(read).toMatchObject({ kind: 'results', results: [{ ok: false }] });
  });
});
