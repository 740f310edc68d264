import { graph, ProxyError, talkjs } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import {
  carriedHeaders,
  isJsonContentType,
  PASS_REASONS,
  parseHeaderList,
  parseRequestTarget,
  route,
} from './route.js';

describe('parseRequestTarget', () => {
  it('refuses a slash or backslash smuggled into a segment, raw backslashes too, but not in the query', () => {
    expect(parseRequestTarget('/v1/a%5Cb/%41')).toBeInstanceOf(ProxyError);
    expect(parseRequestTarget('/v1/a%2Fb')).toBeInstanceOf(ProxyError);
    // A WHATWG-URL upstream reads a raw backslash as a slash: `\..\` would climb into another app.
    for (const path of ['/v1/a\\b/%41?x=1', '/v1/a/users/u1\\..\\..\\b\\users\\u2', '/v1/a/users/a\\b']) {
      const refused = parseRequestTarget(path);
      expect(refused).toBeInstanceOf(ProxyError);
      expect(refused).toMatchObject({
        code: 'PROXY_BAD_REQUEST',
        message: 'the path may not contain a backslash',
      });
    }
    expect(parseRequestTarget('/v1/a/users?q=a\\b')).toEqual({ pathname: '/v1/a/users', search: '?q=a\\b' });
  });

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

  it('keeps only what follows the authority of an absolute-form target, and drops a fragment', () => {
    expect(parseRequestTarget('HTTPS://evil.example')).toEqual({ pathname: '/', search: '' });
    expect(parseRequestTarget('svn+ssh://evil.example?x=1')).toEqual({ pathname: '/', search: '?x=1' });
    expect(parseRequestTarget('http://u@evil.example:81/v1/a/users?q=1#frag')).toEqual({
      pathname: '/v1/a/users',
      search: '?q=1',
    });
    expect(parseRequestTarget('/v1/a/users#x?y')).toEqual({ pathname: '/v1/a/users', search: '' });
    expect(parseRequestTarget('/v1/a/users?a=%2F..')).toEqual({
      pathname: '/v1/a/users',
      search: '?a=%2F..',
    });
    // Encoded characters other than slashes are fine in a segment.
    expect(parseRequestTarget('/v1/a/users/a%20b')).toEqual({ pathname: '/v1/a/users/a%20b', search: '' });
  });

  it.each([
    ['v1/a/users', 'the request target must be a path'],
    ['1http://evil.example/v1', 'the request target must be a path'],
    ['*', 'the request target must be a path'],
    ['/v1/a/%E0%A4%A', 'the path has an invalid percent-encoding'],
    ['/v1/a/..', 'the path may not contain "." or ".." segments'],
    ['/v1/a/%2E', 'the path may not contain "." or ".." segments'],
    ['/v1/a%2Fb/users', 'the path may not contain encoded slashes'],
    ['/v1/a%5Cb/users', 'the path may not contain encoded slashes'],
    ['/v1/a/users/%00', 'the path may not contain NUL'],
  ])('refuses %s, saying why', (target, message) => {
    expect(parseRequestTarget(target)).toMatchObject({ code: 'PROXY_BAD_REQUEST', message });
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

  it('says why it passes a call through, and batches what it may', () => {
    const pass = (method: string, path: string, h: Record<string, string>) => route(talkjs, method, path, h);
    expect(pass('GET', '/health', headers)).toEqual({
      kind: 'pass',
      why: { reason: 'route' },
      target: undefined,
    });
    expect(pass('GET', '/v1/a/users', { ...headers, 'x-batch-bypass': '1' })).toEqual({
      kind: 'pass',
      why: { reason: 'bypass' },
      target: { appId: 'a', path: '/users' },
    });
    // Only the value 1 asks for a bypass.
    expect(pass('GET', '/v1/a/users', { ...headers, 'x-batch-bypass': '0' }).kind).toBe('batch');
    expect(pass('OPTIONS', '/v1/a/users', headers)).toMatchObject({
      kind: 'pass',
      why: { reason: 'method' },
    });
    expect(pass('POST', '/v1/a/users', { ...headers, 'content-type': 'text/plain' })).toMatchObject({
      why: { reason: 'content-type' },
    });
    expect(pass('POST', '/v1/a/users', { ...headers, 'content-type': 'application/json' })).toEqual({
      kind: 'batch',
      method: 'POST',
      target: { appId: 'a', path: '/users' },
    });
    expect(pass('DELETE', '/v1/a/users/u1', {})).toMatchObject({ kind: 'batch', method: 'DELETE' });
    expect(pass('POST', '/v1/a/batch', headers)).toEqual({
      kind: 'client-batch',
      why: { reason: 'batch-endpoint' },
      target: { appId: 'a', path: '/batch' },
    });
  });

  it("drops only the headers it knows: the dialect's version header and known prefixes", () => {
    const kindWith = (name: string) => route(talkjs, 'GET', '/v1/a/users', { [name]: '1' }).kind;
    expect(kindWith('talkjs-rest-version')).toBe('batch');
    for (const name of ['x-b3-traceid', 'sec-fetch-site', 'sec-ch-ua-mobile', 'x-envoy-attempt', 'x-ot-span'])
      expect(kindWith(name), name).toBe('batch');
    for (const name of [
      'if-none-match',
      'cookie',
      'x-b3',
      'sec-fetch',
      'x-custom',
      'range',
      'x-other-version',
    ])
      expect(kindWith(name), name).toBe('pass');
    expect(route(talkjs, 'GET', '/v1/a/users', { traceparent: '00-x', 'x-b3-sampled': '1' }).kind).toBe(
      'batch',
    );
    expect(route(talkjs, 'GET', '/v1/a/users', { 'x-custom': '1' })).toMatchObject({
      kind: 'pass',
      why: { reason: 'header', header: 'x-custom' },
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

describe('a dialect’s refusal', () => {
  it('names its pass reason as a code the edge shows as it is (query or body), for each dialect', () => {
    const target = { appId: 'a', path: '/users' };
    const refusal = (
      dialect: typeof talkjs,
      method: 'GET' | 'POST',
      search: string,
      body?: string,
      path = '/users',
    ) => {
      const built = dialect.toOp({
        method,
        target: { ...target, path },
        query: new URLSearchParams(search),
        body,
        apiVersion: undefined,
        search: search === '' ? '' : `?${search}`,
      });
      if (!('passThrough' in built)) throw new Error('expected a refusal');
      expect(PASS_REASONS).toContain(built.reason);
      return built.reason;
    };
    expect(refusal(talkjs, 'GET', 'id=1&id=2')).toBe('query');
    expect(refusal(talkjs, 'POST', 'x=1', '{}')).toBe('query');
    expect(refusal(talkjs, 'GET', '', '{}')).toBe('body');
    expect(refusal(graph, 'GET', '', '{}')).toBe('body');
    expect(refusal(graph, 'POST', '')).toBe('body');
    expect(refusal(graph, 'GET', '', undefined, '/me/photo/$value')).toBe('body');
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
    expect(isJsonContentType(' application/json ;x=1')).toBe(true);
    expect(isJsonContentType('application/jsonx')).toBe(false);
    expect(isJsonContentType('text/x+json')).toBe(false);
    expect(isJsonContentType('application/json+xml')).toBe(false);
    expect(isJsonContentType('')).toBe(false);
  });
});

describe('carriedHeaders', () => {
  it('keeps exactly the headers the dialect carries into an op, with their values', () => {
    const headers = {
      'content-type': 'application/json',
      'if-match': 'W/"1"',
      authorization: 'Bearer x',
      'x-other': 'y',
      accept: 'application/json',
    };
    expect(carriedHeaders(graph, headers)).toEqual({
      'content-type': 'application/json',
      'if-match': 'W/"1"',
    });
    // TalkJS carries none: its ops take no headers.
    expect(carriedHeaders(talkjs, headers)).toEqual({});
  });

  it('skips a header node gives as a list of values, and reads own names only', () => {
    const headers = Object.assign(Object.create({ 'if-none-match': '"inherited"' }) as object, {
      'if-match': ['"a"', '"b"'],
      'if-none-match': undefined,
      'content-type': 'application/json',
    });
    expect(carriedHeaders(graph, headers as never)).toEqual({ 'content-type': 'application/json' });
  });
});
