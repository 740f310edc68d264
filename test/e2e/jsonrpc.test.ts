// The real proxy process speaking JSON-RPC 2.0 (DIALECT=jsonrpc) in front of the fake JSON-RPC
// server (test/fake-jsonrpc): concurrent single calls leave as batches of at most BATCH_MAX_OPS on
// their own path, each caller gets its own id back, a write is ordered against the reads of its
// endpoint and never sent twice, a bad entry is a 502 for that caller alone.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeJsonRpc, startFakeJsonRpc } from '../fake-jsonrpc/index.js';
import { useProxy } from '../harness/use.js';

let fake: FakeJsonRpc;
// Registered before useProxy's hook, so the fake is up when the proxy's env is read.
beforeAll(async () => {
  fake = await startFakeJsonRpc({ tokens: ['t1', 't2'], maxBatch: 10, seed: 29 });
});
afterAll(async () => {
  await fake.close();
});

const { proxy } = useProxy(
  () => ({
    DIALECT: 'jsonrpc',
    UPSTREAM_URL: fake.url,
    JSONRPC_WRITE_METHODS: 'counter_add,eth_send*',
    LOG_LEVEL: 'warn',
    // Wide enough that calls sent together meet in one window on a loaded machine.
    BATCH_WINDOW_MS: '50',
    BATCH_MAX_OPS: '10',
    BATCH_RATE_PER_SEC: '100',
    BATCH_BURST: '100',
  }),
  { exitCode: 0 },
);

afterEach(() => fake.reset());

interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

async function rpc(body: unknown, path = '/rpc', token = 't1'): Promise<Reply> {
  const res = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

const req = (id: unknown, method: string, params?: unknown) => ({ jsonrpc: '2.0', id, method, params });

/** The upstream calls (by call number) that carried each executed entry of `method`. */
const callsOf = (method: string) => fake.executed.filter((e) => e.method === method).map((e) => e.callId);

describe('JSON-RPC 2.0 through the real proxy process', () => {
  it('batches concurrent calls (≤ 10 per batch), each caller answered with its own id and result', async () => {
    const calls = Array.from({ length: 40 }, (_, i) => {
      // Ids of both kinds, many of them alike across callers: the proxy numbers the entries itself.
      const id = i % 3 === 0 ? 1 : i % 3 === 1 ? `caller-${i}` : i;
      return rpc(req(id, 'echo', [i])).then((r) => ({ i, id, r }));
    });
    for (const { i, id, r } of await Promise.all(calls)) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ jsonrpc: '2.0', id, result: [i] });
    }
    const sizes = new Map<number, number>();
    for (const e of fake.executed) sizes.set(e.callId, (sizes.get(e.callId) ?? 0) + 1);
    expect(fake.executed).toHaveLength(40);
    expect(fake.executed.every((e) => e.batch && e.path === '/rpc')).toBe(true);
    expect(Math.max(...sizes.values())).toBeLessThanOrEqual(10);
    expect(sizes.size).toBeLessThan(40);
  });

  it('passes each per-entry error to its caller under 200, with its own id', async () => {
    const [missing, ok] = await Promise.all([rpc(req('m', 'no_such_method')), rpc(req('e', 'echo', ['x']))]);
    expect(missing).toMatchObject({
      status: 200,
      body: { jsonrpc: '2.0', id: 'm', error: { code: -32601, message: 'Method not found' } },
    });
    expect(ok.body).toEqual({ jsonrpc: '2.0', id: 'e', result: ['x'] });
  });

  it('answers 502 to the caller whose entry is invalid, and only to it', async () => {
    const answers = await Promise.all([
      rpc(req(1, 'echo', ['a'])),
      rpc(req(2, 'test_badResult')),
      rpc(req(3, 'echo', ['c'])),
    ]);
    // The three shared one batch, so the bad entry was split back from its neighbours.
    expect(new Set(fake.executed.map((e) => e.callId)).size).toBe(1);
    expect(answers.map((a) => a.status)).toEqual([200, 502, 200]);
    expect(answers[0]?.body).toEqual({ jsonrpc: '2.0', id: 1, result: ['a'] });
    expect(answers[2]?.body).toEqual({ jsonrpc: '2.0', id: 3, result: ['c'] });
  });

  it('orders a write against the reads of its endpoint: a read after it sees it, in a later call', async () => {
    const before = rpc(req('r0', 'counter_get', ['k']));
    const write = rpc(req('w', 'counter_add', ['k', 5]));
    const after = rpc(req('r1', 'counter_get', ['k']));
    const [b, w, a] = await Promise.all([before, write, after]);
    expect(b.body).toEqual({ jsonrpc: '2.0', id: 'r0', result: 0 });
    expect(w.body).toEqual({ jsonrpc: '2.0', id: 'w', result: 5 });
    expect(a.body).toEqual({ jsonrpc: '2.0', id: 'r1', result: 5 });
    const [readCall, laterRead] = callsOf('counter_get');
    const [writeCall] = callsOf('counter_add');
    expect(readCall).toBeLessThan(writeCall as number);
    expect(writeCall).toBeLessThan(laterRead as number);
  });

  it('keeps endpoints apart: calls to two paths never share a batch', async () => {
    await Promise.all([
      rpc(req(1, 'echo'), '/rpc/a'),
      rpc(req(1, 'echo'), '/rpc/b'),
      rpc(req(2, 'echo'), '/rpc/a'),
    ]);
    const byCall = new Map<number, Set<string>>();
    for (const e of fake.executed) byCall.set(e.callId, (byCall.get(e.callId) ?? new Set()).add(e.path));
    for (const paths of byCall.values()) expect(paths.size).toBe(1);
    expect(fake.executed.map((e) => e.path).sort()).toEqual(['/rpc/a', '/rpc/a', '/rpc/b']);
  });

  it('never sends a write twice after a 5xx, and resends a read', async () => {
    fake.faults.queue.push({ on: 'any', status: 500, afterExecute: true });
    const write = await rpc(req('w', 'counter_add', ['once', 1]));
    expect(write.status).toBeGreaterThanOrEqual(500);
    expect(callsOf('counter_add')).toHaveLength(1);
    expect(fake.state.counters.get('once')).toBe(1);

    fake.faults.queue.push({ on: 'any', status: 500, afterExecute: true });
    const read = await rpc(req('r', 'counter_get', ['once']));
    expect(read).toMatchObject({ status: 200, body: { jsonrpc: '2.0', id: 'r', result: 1 } });
    expect(callsOf('counter_get')).toHaveLength(2);
  });

  it('waits out an upstream 429 and sends the batch again: every caller answered, the write run once', async () => {
    // One call, then one every 2 s: the second batch of the wave is refused 429 with Retry-After.
    fake.setLimit({ ratePerSec: 0.5, burst: 1 });
    const reads = Array.from({ length: 10 }, (_, i) => rpc(req(i, 'echo', [i])));
    const write = rpc(req('w', 'counter_add', ['limited', 1]));
    const more = Array.from({ length: 3 }, (_, i) => rpc(req(10 + i, 'echo', [10 + i])));
    const answers = await Promise.all([...reads, write, ...more]);
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 14 }, () => 200));
    expect(answers[10]?.body).toEqual({ jsonrpc: '2.0', id: 'w', result: 1 });
    expect(fake.throttled).toBeGreaterThan(0);
    expect(callsOf('counter_add')).toHaveLength(1);
    expect(callsOf('echo')).toHaveLength(13);
  }, 20_000);

  it("passes notifications and the caller's own arrays through, saying why", async () => {
    const note = await rpc({ jsonrpc: '2.0', method: 'counter_add', params: ['n', 1] });
    expect(note.status).toBe(204);
    expect(note.headers.get('server-timing')).toContain('passthrough;desc="notification"');
    const own = await rpc([req(1, 'echo', ['x']), req(2, 'counter_get', ['n'])]);
    expect(own.status).toBe(200);
    expect(own.headers.get('server-timing')).toContain('passthrough;desc="client-batch"');
    const answers = own.body as Array<{ id: number }>;
    expect([...answers].sort((x, y) => x.id - y.id)).toEqual([
      { jsonrpc: '2.0', id: 1, result: ['x'] },
      { jsonrpc: '2.0', id: 2, result: 1 },
    ]);
  });
});
