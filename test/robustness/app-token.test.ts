// SPEC §8c "Unverified callers spend nothing": in app-token mode a call whose credential the proxy
// cannot verify gets 401 on every route — batched, pass-through, bypass, the client's own batch
// call — before it takes any token or reaches the upstream.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signAppToken } from '../fake-upstream/index.js';
import { appTokenEnv, useProxy } from '../harness/use.js';

const SECRET = 'sk_refusal_app1';
const dir = mkdtempSync(join(tmpdir(), 'batch-proxy-refusal-'));

// Registered before useProxy's, so it runs after the proxy has stopped.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { proxy, upstream } = useProxy(
  () => ({
    ...appTokenEnv(dir, { app1: SECRET }),
    LOG_LEVEL: 'warn',
    BATCH_WINDOW_MS: '5',
    // One token per bucket, refilled every 100 s: a single spent token shows as a 503.
    BATCH_RATE_PER_SEC: '0.01',
    BATCH_BURST: '1',
    REST_RATE_PER_SEC: '0.01',
    REST_BURST: '1',
    MAX_WAIT_MS: '200',
  }),
  { upstream: { apps: { app1: SECRET } } },
);

const BAD_CREDENTIALS: Array<string | undefined> = [
  undefined,
  'Bearer not-a-token',
  `Bearer ${SECRET}x`,
  'Basic dXNlcjpwYXNz',
  `Bearer ${signAppToken('app1', 'sk_someone_else', { expiresInSec: 30 })}`,
  `Bearer ${signAppToken('app1', SECRET, { expiresInSec: -10 })}`,
];

/** Every route a call can take: batched, bypass, pass-through by method/header/type, client batch, no app. */
const ROUTES: Array<{
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}> = [
  { name: 'batched write', method: 'PUT', path: '/v1/app1/users/u1', body: '{"name":"x"}' },
  { name: 'batched read', method: 'GET', path: '/v1/app1/users/u1' },
  { name: 'bypass', method: 'GET', path: '/v1/app1/users/u1', headers: { 'x-batch-bypass': '1' } },
  { name: 'pass-through by method', method: 'OPTIONS', path: '/v1/app1/users/u1' },
  { name: 'pass-through by header', method: 'GET', path: '/v1/app1/users/u1', headers: { 'x-custom': '1' } },
  {
    name: 'pass-through by type',
    method: 'PUT',
    path: '/v1/app1/users/u1',
    headers: { 'content-type': 'text/plain' },
    body: 'x',
  },
  { name: 'client batch', method: 'POST', path: '/v1/app1/batch', body: '{"requests":[]}' },
  { name: 'client batch, other spelling', method: 'POST', path: '/v1/app1/%62atch', body: '{"requests":[]}' },
  { name: 'not an app resource', method: 'GET', path: '/v2/whatever' },
];

function send(route: (typeof ROUTES)[number], authorization: string | undefined): Promise<Response> {
  const headers: Record<string, string> = {
    ...(route.body ? { 'content-type': 'application/json' } : {}),
    ...route.headers,
  };
  if (authorization !== undefined) headers.authorization = authorization;
  return fetch(`${proxy.url}${route.path}`, {
    method: route.method,
    headers,
    ...(route.body ? { body: route.body } : {}),
  });
}

describe('app-token refusals', () => {
  it('answer 401 on every route, reach no upstream and spend no token', async () => {
    upstream.reset();
    for (const route of ROUTES) {
      const answers = await Promise.all(BAD_CREDENTIALS.map((auth) => send(route, auth)));
      for (const [i, res] of answers.entries()) {
        const body = await res.text();
        expect(res.status, `${route.name} with credential #${i}: ${body}`).toBe(401);
        expect(JSON.parse(body)).toMatchObject({ error: { code: 'PROXY_UNAUTHORIZED' } });
      }
    }
    expect(upstream.stats.batchCalls + upstream.stats.singleCalls + upstream.stats.unauthorized).toBe(0);

    // Both buckets still hold their one token: a verified caller gets through on each, at once.
    const good = `Bearer ${signAppToken('app1', SECRET, { expiresInSec: 30 })}`;
    const bypass = await send(ROUTES[2] as (typeof ROUTES)[number], good);
    await bypass.arrayBuffer();
    expect(bypass.status).toBe(404); // the fake's answer for an unknown user: it reached the upstream
    const clientBatch = await send(
      {
        name: 'client batch',
        method: 'POST',
        path: '/v1/app1/batch',
        body: JSON.stringify([[0, 'GET', '/users/u1', {}]]),
      },
      good,
    );
    expect(clientBatch.status, await clientBatch.text()).toBe(200);
  });
});
