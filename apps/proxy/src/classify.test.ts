import { talkjs } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import {
  isJsonContentType,
  opRefusalReason,
  parseHeaderList,
  parseRequestTarget,
  route,
} from './classify.js';

describe('parseRequestTarget', () => {
  it('keeps path and query of origin-form and absolute-form targets, ignoring the authority', () => {
    expect(parseRequestTarget('/v1/a/users?limit=1')).toEqual({
      pathname: '/v1/a/users',
      search: '?limit=1',
    });
    expect(parseRequestTarget('http://evil.example/v1/a/users')).toEqual({
      pathname: '/v1/a/users',
      search: '',
    });
  });

  it.each([
    '/v1/a/../b/users',
    '/v1/a/%2e%2e/b/users',
    '/v1/a/./users',
    '/v1/a%2F..%2Fb/users',
    '/v1/a/%E0%A4%A',
  ])('refuses %s', (target) => {
    expect(parseRequestTarget(target)).toMatchObject({ code: 'PROXY_BAD_REQUEST' });
  });
});

describe('route', () => {
  const headers = { host: 'x', 'user-agent': 'curl/8', accept: '*/*' };

  it('batches an app call with only safe headers', () => {
    expect(route(talkjs, 'GET', '/v1/a/users/u1', headers)).toMatchObject({
      kind: 'batch',
      target: { appId: 'a', path: '/users/u1' },
    });
  });

  it('passes through on an unknown header, the bypass header, other methods and non-app paths', () => {
    expect(route(talkjs, 'GET', '/v1/a/users', { ...headers, 'if-none-match': 'x' })).toMatchObject({
      kind: 'pass',
      why: { reason: 'header', header: 'if-none-match' },
    });
    expect(route(talkjs, 'GET', '/v1/a/users', { ...headers, 'x-batch-bypass': '1' })).toMatchObject({
      kind: 'pass',
      why: { reason: 'bypass' },
    });
    expect(route(talkjs, 'HEAD', '/v1/a/users', headers)).toMatchObject({
      kind: 'pass',
      why: { reason: 'method' },
    });
    expect(route(talkjs, 'GET', '/health', headers)).toMatchObject({
      kind: 'pass',
      why: { reason: 'route' },
      target: undefined,
    });
    expect(route(talkjs, 'POST', '/v1/a/users', { ...headers, 'content-type': 'text/plain' })).toMatchObject({
      kind: 'pass',
      why: { reason: 'content-type' },
    });
  });

  it('treats a call to the batch endpoint as the client’s own batch', () => {
    expect(route(talkjs, 'POST', '/v1/a/batch', headers)).toMatchObject({
      kind: 'client-batch',
      why: { reason: 'batch-endpoint' },
    });
  });

  it('batches despite a header the operator made droppable (BATCH_DROPPABLE_HEADERS)', () => {
    const withTenant = { ...headers, 'x-tenant': 't1' };
    expect(route(talkjs, 'GET', '/v1/a/users', withTenant)).toMatchObject({
      why: { reason: 'header', header: 'x-tenant' },
    });
    expect(route(talkjs, 'GET', '/v1/a/users', withTenant, new Set(['x-tenant'])).kind).toBe('batch');
  });

  it('admits what common clients send by default', () => {
    const clients = {
      nodeFetch: {
        accept: '*/*',
        'accept-language': '*',
        'sec-fetch-mode': 'cors',
        'user-agent': 'node',
        'accept-encoding': 'gzip, deflate',
      },
      python: {
        'user-agent': 'python-requests/2.32',
        'accept-encoding': 'gzip, deflate',
        accept: '*/*',
        connection: 'keep-alive',
      },
      axios: {
        accept: 'application/json, text/plain, */*',
        'content-type': 'application/json',
        'user-agent': 'axios/1.7',
        'accept-encoding': 'gzip, compress, deflate, br',
      },
      go: { 'user-agent': 'Go-http-client/1.1', 'accept-encoding': 'gzip', 'content-length': '2' },
      java: {
        connection: 'Upgrade, HTTP2-Settings',
        'http2-settings': 'AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA',
        upgrade: 'h2c',
        'user-agent': 'Java-http-client/21',
        'content-type': 'application/json; charset=utf-8',
      },
    };
    for (const h of Object.values(clients))
      expect(route(talkjs, 'PUT', '/v1/a/users/u1', { host: 'x', ...h }).kind).toBe('batch');
  });
});

describe('opRefusalReason', () => {
  it('maps every refusal of the TalkJS dialect to query or body', () => {
    const target = { appId: 'a', path: '/users' };
    const refusal = (method: 'GET' | 'POST', search: string, body?: string) => {
      const built = talkjs.toOp({
        method,
        target,
        query: new URLSearchParams(search),
        body,
        apiVersion: undefined,
      });
      if (!('passThrough' in built)) throw new Error('expected a refusal');
      return opRefusalReason(built.passThrough);
    };
    expect(refusal('GET', '?id=1&id=2')).toBe('query');
    expect(refusal('POST', '?x=1', '{}')).toBe('query');
    expect(refusal('GET', '', '{}')).toBe('body');
  });
});

describe('parseHeaderList', () => {
  it('lower-cases names, skips empty entries and refuses what is not a header name', () => {
    expect(parseHeaderList(' X-Tenant, cookie ,,')).toEqual(new Set(['x-tenant', 'cookie']));
    expect(parseHeaderList('x-ok, bad name')).toEqual({ invalid: 'bad name' });
    expect(parseHeaderList('x:y')).toEqual({ invalid: 'x:y' });
  });
});

describe('isJsonContentType', () => {
  it('accepts JSON with parameters and +json types only', () => {
    expect(isJsonContentType('application/json; charset=utf-8')).toBe(true);
    expect(isJsonContentType('Application/JSON')).toBe(true);
    expect(isJsonContentType('application/merge-patch+json')).toBe(true);
    expect(isJsonContentType('text/json')).toBe(false);
    expect(isJsonContentType(undefined)).toBe(false);
  });
});

describe('routeTemplate', () => {
  it('replaces app and resource ids and drops the query', async () => {
    const { routeTemplate } = await import('./app.js');
    expect(routeTemplate('/v1/app1/conversations/c9/messages?limit=5')).toBe(
      '/v1/:appId/conversations/:id/messages',
    );
    expect(routeTemplate('/v1/app1/users/u1')).toBe('/v1/:appId/users/:id');
    expect(routeTemplate('/healthz')).toBe('/healthz');
  });
});
