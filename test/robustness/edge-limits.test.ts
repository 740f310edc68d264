// SPEC §8c at the edge: BODY_LIMIT_BYTES holds for streamed pass-through bodies, and a malformed
// follow-up request on a keep-alive socket never replaces the answer still owed to the one before.

import { Readable } from 'node:stream';
import { Client } from 'undici';
import { describe, expect, it } from 'vitest';
import { exchange } from '../fuzz/raw-http.js';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_limits_app1';
const AUTH = `Bearer ${SECRET}`;
const BODY_LIMIT = 4096;

const { proxy, upstream } = useProxy(
  {
    LOG_LEVEL: 'warn',
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
    // Long enough that a pipelined follow-up arrives while the first answer is still owed.
    BATCH_WINDOW_MS: '300',
  },
  { upstream: { apps: { app1: SECRET } } },
);

describe('BODY_LIMIT_BYTES on pass-through bodies', () => {
  const big = () => Buffer.from(`{"name":"${'x'.repeat(BODY_LIMIT * 4)}"}`);

  it('refuses a declared size over the limit with 413 before anything is sent', async () => {
    upstream.reset();
    const res = await fetch(`${proxy.url}/v1/app1/users/big`, {
      method: 'PUT',
      headers: { authorization: AUTH, 'content-type': 'application/json', 'x-batch-bypass': '1' },
      body: big(),
    });
    expect(res.status, await res.text()).toBe(413);
    expect(upstream.executed).toHaveLength(0);
  });

  it('refuses a chunked body once it passes the limit, and keeps the connection usable', async () => {
    upstream.reset();
    const client = new Client(proxy.url);
    try {
      for (const headers of [{ 'x-batch-bypass': '1' }, { 'content-type': 'text/plain' }]) {
        const res = await client.request({
          method: 'PUT',
          path: '/v1/app1/users/big',
          headers: { authorization: AUTH, 'content-type': 'application/json', ...headers },
          body: Readable.from([big().subarray(0, 1000), big().subarray(1000)]),
        });
        expect(res.statusCode, await res.body.text()).toBe(413);
      }
      const next = await client.request({
        method: 'GET',
        path: '/v1/app1/users/big',
        headers: { authorization: AUTH },
      });
      await next.body.text();
      expect(next.statusCode).toBe(404);
      expect(upstream.executed.filter((op) => op.method === 'PUT')).toHaveLength(0);
    } finally {
      await client.close();
    }
  });
});

describe('a malformed follow-up on a keep-alive socket', () => {
  it('is answered after the answer still owed, never in its place', async () => {
    const first = `GET /v1/app1/users/owed HTTP/1.1\r\nhost: x\r\nauthorization: ${AUTH}\r\n\r\n`;
    const garbage = 'NOT A REQUEST\r\n\r\n';
    const ex = await exchange(proxy.url, first + garbage, { timeoutMs: 5_000 });
    expect(ex.closed).toBe(true);
    const text = ex.data.toString('latin1');
    const answers = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    expect(answers, text).toEqual([404, 400]);
  });
});
