// The pass-through's header hygiene (RFC 9110 §7.6.1), against a real upstream server on loopback:
// hop-by-hop headers and the ones the Connection header names never cross the proxy, either way.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamClient } from '@batch-proxy/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { passThrough, stripHopByHop } from './passthrough.js';

describe('stripHopByHop', () => {
  it('drops every hop-by-hop header and keeps the end-to-end ones', () => {
    expect(
      stripHopByHop({
        connection: 'close',
        'keep-alive': 'timeout=5',
        'proxy-authenticate': 'Basic',
        'proxy-authorization': 'Basic eA==',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        trailer: 'X-Sum',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA',
        'content-type': 'application/json',
        authorization: 'Bearer k',
        'set-cookie': ['a=1', 'b=2'],
        'x-gone': undefined,
      }),
    ).toStrictEqual({
      'content-type': 'application/json',
      authorization: 'Bearer k',
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  it('drops each hop-by-hop header on its own, from a fresh load of the module', async () => {
    // The set of names is built when the module loads. Loaded again here, inside the test, so that a
    // mutation run (which switches a planted bug on per test, after the first load) sees the set it
    // changed; the test above checks the same names against the first load.
    vi.resetModules();
    const fresh = await import('./passthrough.js');
    const names = [
      'connection',
      'keep-alive',
      'proxy-authenticate',
      'proxy-authorization',
      'proxy-connection',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
      'http2-settings',
    ];
    for (const name of names)
      expect(fresh.stripHopByHop({ [name]: 'x', accept: '*/*' }), name).toEqual({ accept: '*/*' });
  });

  it('drops the headers the Connection header names, in any case, list or repeat', () => {
    expect(
      stripHopByHop({
        connection: ['X-One , x-two', 'X-Three'],
        'x-one': '1',
        'x-two': '2',
        'x-three': '3',
        'x-four': '4',
      }),
    ).toEqual({ 'x-four': '4' });
    expect(stripHopByHop({ connection: 'x-one', 'x-one': '1', 'x-two': '2' })).toEqual({ 'x-two': '2' });
  });

  it('drops the extra names it is given', () => {
    expect(
      stripHopByHop({ host: 'proxy', 'x-batch-bypass': '1', accept: '*/*' }, ['host', 'x-batch-bypass']),
    ).toEqual({
      accept: '*/*',
    });
  });
});

describe('passThrough', () => {
  let server: Server;
  let client: UpstreamClient;
  const received: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const status = Number(req.headers['x-answer-status'] ?? 200);
        res.writeHead(status, {
          'content-type': 'application/json',
          connection: 'X-Upstream-Hop',
          'x-upstream-hop': 'hop',
          'keep-alive': 'timeout=77',
          'proxy-authenticate': 'Basic realm="upstream"',
          'x-end-to-end': 'kept',
          'set-cookie': ['a=1', 'b=2'],
        });
        res.end(status === 204 || status === 304 ? undefined : '{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new UpstreamClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const send = (method: string, headers: IncomingHttpHeaders, body?: Buffer) =>
    passThrough(client, {
      method,
      pathAndQuery: '/v1/app1/users/u1?x=1',
      headers,
      body,
      signal: new AbortController().signal,
    });

  it('sends method, path, end-to-end headers and body, and none of the hop-by-hop ones', async () => {
    received.length = 0;
    const res = await send(
      'PUT',
      {
        host: 'proxy.example',
        connection: 'X-Client-Hop',
        'x-client-hop': 'hop',
        'proxy-authorization': 'Basic eA==',
        te: 'trailers',
        'x-batch-bypass': '1',
        expect: '100-continue',
        authorization: 'Bearer k',
        'content-type': 'application/json',
        'x-end-to-end': 'kept',
      },
      Buffer.from('{"name":"n"}'),
    );
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"ok":true}');
    const [got] = received;
    expect(got).toMatchObject({ method: 'PUT', url: '/v1/app1/users/u1?x=1', body: '{"name":"n"}' });
    expect(got?.headers).toMatchObject({
      authorization: 'Bearer k',
      'content-type': 'application/json',
      'x-end-to-end': 'kept',
    });
    for (const name of ['x-client-hop', 'proxy-authorization', 'te', 'x-batch-bypass', 'expect'])
      expect(got?.headers).not.toHaveProperty(name);
    expect(got?.headers.host).not.toBe('proxy.example');

    // The answer: the upstream's hop-by-hop headers stay behind, repeated headers stay repeated.
    expect(res.headers.get('x-end-to-end')).toBe('kept');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    for (const name of ['x-upstream-hop', 'keep-alive', 'proxy-authenticate', 'connection'])
      expect(res.headers.get(name)).toBeNull();
  });

  it.each([
    ['HEAD', 200],
    ['GET', 204],
    ['GET', 304],
  ])('answers %s with status %i without a body', async (method, status) => {
    const res = await send(method, { 'x-answer-status': String(status) });
    expect(res.status).toBe(status);
    expect(res.body).toBeNull();
  });

  it('streams the body of any other answer', async () => {
    const res = await send('GET', { 'x-answer-status': '404' });
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('{"ok":true}');
  });
});
