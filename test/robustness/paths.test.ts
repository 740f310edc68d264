// SPEC §8c "One spelling, one resource": the batch-endpoint gate, ordering, collapsing and pacing see
// a canonical path (unreserved characters decoded, no empty segments), and query keys are data.

import { describe, expect, it } from 'vitest';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_paths_app1';
const AUTH = `Bearer ${SECRET}`;

const { proxy, upstream } = useProxy(
  {
    LOG_LEVEL: 'info',
    // A line for every call (the default samples successes): the gate test reads client-batch lines.
    ACCESS_LOG: 'all',
    // Long enough that reads fired together are still queued together on a busy machine.
    BATCH_WINDOW_MS: '1000',
    // One rest token, refilled every 100 s: a second pass-through call of app1 is refused (503).
    REST_RATE_PER_SEC: '0.01',
    REST_BURST: '1',
    // Past the window; a refused pass-through call is answered at once anyway (its wait is 100 s).
    MAX_WAIT_MS: '5000',
  },
  { upstream: { apps: { app1: SECRET } } },
);

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${proxy.url}${path}`, { headers: { authorization: AUTH, ...headers } });

describe('one spelling, one resource', () => {
  it('collapses reads of one resource however its path is spelled', async () => {
    upstream.reset();
    const spellings = [
      '/v1/app1/users/u1',
      '/v1/app1/users/%75%31',
      '/v1/app1//users/u1',
      '/v1/app1/users/u1/',
      '/v1//app1/users/%75%31',
    ];
    const answers = await Promise.all(spellings.map((path) => get(path)));
    for (const res of answers) {
      await res.arrayBuffer();
      expect(res.status).toBe(404);
    }
    const reads = upstream.executed.filter((op) => op.method === 'GET');
    expect(reads.map((op) => op.path)).toEqual(['/users/u1']);
  });

  it('gates the client’s own batch call however the endpoint is spelled', async () => {
    for (const path of ['/v1/app1/%62atch', '/v1/app1//batch', '/v1/app1/batch/']) {
      const requestId = `gate-${path}`;
      const res = await fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify([[0, 'GET', '/users/u1', {}]]),
      });
      await res.arrayBuffer();
      const line = await proxy.waitForLine(`"requestId":${JSON.stringify(requestId)}`);
      expect(JSON.parse(line), path).toMatchObject({ kind: 'client-batch' });
    }
  });

  it('paces pass-through calls of an app however its path is spelled', async () => {
    const first = await get('/v1/app1/users/u1', { 'x-batch-bypass': '1' });
    await first.arrayBuffer();
    expect(first.status).toBe(404); // took the one rest token, reached the upstream
    for (const path of ['/v1//app1/users/u1', '/v1/%61pp1/users/u1']) {
      const res = await get(path, { 'x-batch-bypass': '1' });
      expect(res.status, `${path}: ${await res.text()}`).toBe(503);
    }
  });
});

describe('query keys are data', () => {
  it('keeps ?__proto__=x in a batched read', async () => {
    upstream.reset();
    const res = await get('/v1/app1/users?__proto__=x&limit=5');
    await res.arrayBuffer();
    const [op] = upstream.executed;
    expect(op?.via).toBe('batch');
    expect(op && Object.hasOwn(op.query, '__proto__')).toBe(true);
    expect(op?.query.limit).toBe('5');
    expect(Object.getOwnPropertyDescriptor(op?.query, '__proto__')?.value).toBe('x');
  });
});
