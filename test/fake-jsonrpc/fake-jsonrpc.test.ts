// The fake JSON-RPC upstream enforces the rules the proxy is tested against: a fake that accepted
// anything would prove nothing.

import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeJsonRpc, startFakeJsonRpc } from './index.js';

let fake: FakeJsonRpc;

beforeEach(async () => {
  await fake?.close();
  fake = await startFakeJsonRpc({ tokens: ['t1'], maxBatch: 3, seed: 7, limit: { ratePerSec: 1, burst: 5 } });
});
afterAll(async () => {
  await fake?.close();
});

const post = (body: unknown, token = 't1', path = '/rpc') =>
  fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const req = (id: unknown, method: string, params?: unknown) => ({ jsonrpc: '2.0', id, method, params });

describe('fake JSON-RPC upstream', () => {
  it('answers a single call with its own id', async () => {
    const res = await post(req('a', 'counter_add', ['x', 2]));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 'a', result: 2 });
    expect(fake.calls).toEqual({ batch: 0, single: 1 });
  });

  it('answers a batch by id, in a shuffled order, with per-entry errors under 200', async () => {
    const res = await post([req(1, 'echo', [1]), req(2, 'nope'), req(3, 'counter_get', [5])]);
    expect(res.status).toBe(200);
    const answers = (await res.json()) as Array<{ id: number }>;
    expect([...answers].sort((a, b) => a.id - b.id)).toEqual([
      { jsonrpc: '2.0', id: 1, result: [1] },
      { jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'Method not found' } },
      { jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Invalid params' } },
    ]);
    expect(fake.executed.map((e) => e.method)).toEqual(['echo']);
  });

  it('shuffles: some batch comes back out of order', async () => {
    let reordered = false;
    for (let i = 0; i < 5 && !reordered; i++) {
      const answers = (await (await post([req(0, 'echo'), req(1, 'echo'), req(2, 'echo')])).json()) as Array<{
        id: number;
      }>;
      reordered = answers.map((a) => a.id).join() !== '0,1,2';
    }
    expect(reordered).toBe(true);
  });

  it('refuses a batch above its maximum with 413, running none of it', async () => {
    const res = await post([0, 1, 2, 3].map((i) => req(i, 'counter_add', ['x', 1])));
    expect(res.status).toBe(413);
    expect(fake.executed).toEqual([]);
  });

  it('refuses an unknown or missing bearer token with 401', async () => {
    expect((await post(req(1, 'echo'), 'nope')).status).toBe(401);
    const res = await fetch(`${fake.url}/rpc`, { method: 'POST', body: JSON.stringify(req(1, 'echo')) });
    expect(res.status).toBe(401);
  });

  it('answers 429 with Retry-After beyond its call limit, a batch counting as one call', async () => {
    for (let i = 0; i < 5; i++) expect((await post([req(1, 'echo'), req(2, 'echo')])).status).toBe(200);
    const res = await post(req(1, 'echo'));
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('answers invalid requests, parse errors and an empty array with id null', async () => {
    expect(await (await post('{')).json()).toMatchObject({ id: null, error: { code: -32700 } });
    expect(await (await post([])).json()).toMatchObject({ id: null, error: { code: -32600 } });
    const answers = await (await post([{ id: 1, method: 'echo' }])).json();
    expect(answers).toEqual([
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request' } },
    ]);
  });

  it('runs notifications without answering them', async () => {
    const res = await post([{ jsonrpc: '2.0', method: 'counter_add', params: ['n', 1] }]);
    expect(res.status).toBe(204);
    expect(fake.state.counters.get('n')).toBe(1);
    const mixed = await post([{ jsonrpc: '2.0', method: 'echo' }, req(9, 'echo', ['x'])]);
    expect(await mixed.json()).toEqual([{ jsonrpc: '2.0', id: 9, result: ['x'] }]);
  });

  it('answers test_badResult with an entry that has neither result nor error', async () => {
    expect(await (await post([req(4, 'test_badResult')])).json()).toEqual([{ jsonrpc: '2.0', id: 4 }]);
  });

  it('takes an injected fault: a 500 after executing the batch', async () => {
    fake.faults.queue.push({ status: 500, afterExecute: true });
    const res = await post([req(1, 'counter_add', ['w', 1])]);
    expect(res.status).toBe(500);
    expect(fake.state.counters.get('w')).toBe(1);
  });

  it('refuses other HTTP methods with 405', async () => {
    expect((await fetch(`${fake.url}/rpc`, { headers: { authorization: 'Bearer t1' } })).status).toBe(405);
  });
});
