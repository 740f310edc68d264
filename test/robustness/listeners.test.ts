// SPEC §8c "No request ends the process": every method on every path of both listeners, plus bytes
// that are not HTTP at all, each get an answer or a closed connection, and the process stays healthy.

import { describe, expect, it } from 'vitest';
import { buildRequest, exchange, parseResponse } from '../fuzz/raw-http.js';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_robust_app1';

const { proxy } = useProxy(
  { LOG_LEVEL: 'warn', BATCH_WINDOW_MS: '5' },
  { upstream: { apps: { app1: SECRET } } },
);

/** Every method Node's parser knows that a client may send, and one it does not. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PURGE', 'BREW'];
const ADMIN_PATHS = ['/healthz', '/readyz', '/metrics', '/', '/status.json', '/nope', '/metrics/'];
const DATA_PATHS = ['/', '/v1/app1/users/u1', '/v1/app1/batch', '/v1/app1', '/other', '/v1//app1//users'];

async function healthy(): Promise<void> {
  expect(proxy.child.exitCode).toBeNull();
  const res = await fetch(`${proxy.adminUrl}/healthz`);
  expect(res.status).toBe(200);
  const data = await fetch(`${proxy.url}/v1/app1/users/u1`, {
    headers: { authorization: `Bearer ${SECRET}` },
  });
  await data.arrayBuffer();
  expect(data.status).toBeLessThan(500);
}

async function send(base: string, method: string, path: string): Promise<number | undefined> {
  const body = method === 'GET' || method === 'HEAD' ? '' : '{}';
  const headers: Array<[string, string]> = [
    ['host', 'x'],
    ['authorization', `Bearer ${SECRET}`],
    ['connection', 'close'],
  ];
  if (body) headers.push(['content-type', 'application/json'], ['content-length', String(body.length)]);
  const ex = await exchange(base, buildRequest(method, path, headers, body));
  expect(ex.closed, `${method} ${path} left the connection hanging`).toBe(true);
  return parseResponse(ex.data)?.status;
}

describe('every method on every path', () => {
  it('the admin listener answers each one and stays up', async () => {
    for (const path of ADMIN_PATHS) {
      for (const method of METHODS) {
        const status = await send(proxy.adminUrl, method, path);
        // Node's parser refuses a method it does not know with a 400 of its own; every other one is answered.
        expect(status, `${method} ${path}`).toBeDefined();
      }
    }
    await healthy();
  });

  it('HEAD works on every admin path that GET serves, without a body', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/', '/status.json']) {
      const res = await fetch(`${proxy.adminUrl}${path}`, { method: 'HEAD' });
      expect(res.status, path).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    }
    await healthy();
  });

  it('the data listener answers each one and stays up', async () => {
    for (const path of DATA_PATHS) {
      for (const method of METHODS) {
        const status = await send(proxy.url, method, path);
        expect(status, `${method} ${path}`).toBeDefined();
      }
    }
    await healthy();
  });
});

describe('bytes that are not a well-formed request', () => {
  const TLS_CLIENT_HELLO = Buffer.from(
    '16030100a5010000a10303' +
      '00'.repeat(32) +
      '000020c02bc02fc02cc030cca9cca8c009c013c00ac014009c009d002f0035000a0100005800000014',
    'hex',
  );
  const cases: Array<[string, Buffer | string]> = [
    ['random garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) % 256))],
    ['TLS ClientHello on a plain port', TLS_CLIENT_HELLO],
    [
      'an oversized header',
      buildRequest('GET', '/healthz', [
        ['host', 'x'],
        ['x-big', 'a'.repeat(80_000)],
      ]),
    ],
    ['a bare LF request', 'GET / HTTP/1.1\nHost: x\n\n'],
    ['a request line without version', 'GET /\r\n\r\n'],
    ['a NUL in the target', 'GET /v1/app1/users/\0 HTTP/1.1\r\nhost: x\r\n\r\n'],
    [
      'conflicting framing',
      'POST /v1/app1/users/u1 HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
  ];
  for (const [name, bytes] of cases) {
    it(`${name}: answered or closed on both listeners, process healthy`, async () => {
      for (const base of [proxy.url, proxy.adminUrl]) {
        const ex = await exchange(base, bytes, { endAfterMs: 200 });
        expect(ex.closed, `${name} on ${base}`).toBe(true);
      }
      await healthy();
    });
  }
});
