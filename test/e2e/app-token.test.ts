// AUTH_MODE=app-token: callers with different per-request app tokens share batches, bad tokens are
// refused by the proxy, and the upstream only ever sees tokens the proxy signed.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signAppToken } from '../fake-upstream/index.js';
import { appTokenEnv, useProxy } from '../harness/use.js';

const SECRET = 'sk_test_app_token';
const { proxy, upstream } = useProxy(
  () => ({
    ...appTokenEnv(mkdtempSync(join(tmpdir(), 'batch-proxy-secrets-')), { app1: SECRET }),
    // A line for every call (the default samples successes): the access-line test counts them all.
    ACCESS_LOG: 'all',
    // Long enough that ten concurrent callers on a loaded machine all arrive within it (they were
    // seen spread over more than 50 ms, splitting the batch); a full batch of ten leaves at once.
    BATCH_WINDOW_MS: '500',
    LOG_LEVEL: 'debug',
  }),
  { upstream: { apps: { app1: SECRET } } },
);

const get = (path: string, authorization: string) =>
  fetch(`${proxy.url}/v1/app1${path}`, { headers: { authorization } });

const put = (path: string, authorization: string, body: unknown) =>
  fetch(`${proxy.url}/v1/app1${path}`, {
    method: 'PUT',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('AUTH_MODE=app-token', () => {
  it('batches callers that each use a fresh token of their own', async () => {
    upstream.reset();
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        put(
          `/users/t${i}`,
          `Bearer ${signAppToken('app1', SECRET, { expiresInSec: 30, claims: { n: i } })}`,
          { name: `t${i}` },
        ),
      ),
    );
    expect(await Promise.all(responses.map(async (r) => [r.status, await r.json()]))).toEqual(
      Array(10).fill([200, {}]),
    );
    expect(upstream.stats.batchCalls).toBe(1);
    const used = new Set(upstream.executed.map((op) => op.credential));
    expect(used.size).toBe(1);
    // The upstream saw the proxy's own token, not any caller's.
    const [proxyToken] = [...used];
    expect(proxyToken).toMatch(/^Bearer eyJ/);
    expect(
      JSON.parse(Buffer.from(proxyToken?.split('.')[1] ?? '', 'base64url').toString()),
    ).not.toHaveProperty('n');

    // Read back together (batched), each caller with its own token: each gets its own user.
    const reads = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        get(`/users/t${i}`, `Bearer ${signAppToken('app1', SECRET, { expiresInSec: 30, claims: { r: i } })}`),
      ),
    );
    const bodies = await Promise.all(reads.map(async (r) => [r.status, await r.json()]));
    bodies.forEach((b, i) => {
      expect(b).toEqual([200, expect.objectContaining({ id: `t${i}`, name: `t${i}` })]);
    });
  });

  it('answers 401 itself to a bad or expired token and never calls the upstream', async () => {
    upstream.reset();
    const bad = await put('/users/x', 'Bearer not-a-token', {});
    const expired = await put('/users/x', `Bearer ${signAppToken('app1', SECRET, { expiresInSec: -5 })}`, {});
    const wrongApp = await put(
      '/users/x',
      `Bearer ${signAppToken('app2', SECRET, { expiresInSec: 30 })}`,
      {},
    );
    // Well-formed, right app, unexpired, but signed with another key: only the signature is wrong.
    const forged = await put(
      '/users/x',
      `Bearer ${signAppToken('app1', 'sk_not_the_secret', { expiresInSec: 30 })}`,
      {},
    );
    for (const res of [bad, expired, wrongApp, forged]) {
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: 'PROXY_UNAUTHORIZED' } });
    }
    expect(upstream.stats.batchCalls + upstream.stats.singleCalls).toBe(0);
  });

  it('accepts the secret key itself and never logs it', async () => {
    const res = await put('/users/by-secret', `Bearer ${SECRET}`, { name: 's' });
    expect(res.status).toBe(200);
    expect(proxy.logs()).not.toContain(SECRET);
    // One access line per caller: route template, status, batch id, queue and upstream time. The line
    // reaches us through the child's stdout pipe, possibly after the answer: wait for it (bounded).
    const accessLines = () =>
      proxy
        .logs()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const deadline = performance.now() + 5_000;
    // 10 PUTs and 10 GETs batched, 4 refused, this one.
    while (accessLines().length < 25 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const lines = accessLines();
    expect(lines.length).toBe(25);
    expect(lines.at(-1)).toMatchObject({
      method: 'PUT',
      route: '/v1/:appId/users/:id',
      status: 200,
      kind: 'batched',
    });
    expect(lines.at(-1)).toHaveProperty('batchId');
    expect(lines.at(-1)).toHaveProperty('queueMs');
    expect(lines.at(-1)).toHaveProperty('upstreamMs');
  });
});
