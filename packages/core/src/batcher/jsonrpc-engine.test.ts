// The engine with the JSON-RPC dialect: every op is a POST on one path, so what is a write, what
// collapses and what is resent come from the dialect (`OpRequest.write` / `retrySafe`) and the body.

import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { jsonrpcDialect } from '../dialect/jsonrpc.js';
import { fakeTransport, jsonrpcWire } from '../testing/fake-transport.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import type { Answer } from './op.js';
import { Scheduler } from './scheduler.js';

const dialect = jsonrpcDialect({ writeMethods: ['counter_add'] });

function rpcOp(id: unknown, method: string, params: unknown = []): OpRequest {
  const built = dialect.toOp({
    method: 'POST',
    target: { appId: '/rpc', path: '/rpc' },
    query: new URLSearchParams(),
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
    apiVersion: undefined,
  });
  if ('passThrough' in built) throw new Error(built.passThrough);
  return built.op;
}

function engine(maxAttempts = 1) {
  const clock = new ManualClock(0);
  const upstream = fakeTransport(clock, { wire: jsonrpcWire });
  // Each entry answers its method and params, so a mix-up shows.
  upstream.answerOp = (op) => ({ status: 200, body: { method: op.path, params: op.body } });
  const scheduler = new Scheduler(schedulerOptions({ dialect, upstream, clock, windowMs: 5, maxAttempts }));
  const submit = (op: OpRequest) => scheduler.submit({ appId: '/rpc', credential: 'Bearer t', op });
  return { clock, upstream, submit };
}

const bodyOf = (answer: Answer) => (answer.kind === 'result' ? JSON.parse(answer.body) : answer.error.code);

describe('jsonrpc through the engine', () => {
  it('collapses byte-identical reads, and only those: each caller gets its own id', async () => {
    const { clock, upstream, submit } = engine();
    const answers = [
      submit(rpcOp(1, 'eth_blockNumber')),
      submit(rpcOp(1, 'eth_blockNumber')),
      submit(rpcOp(2, 'eth_blockNumber')),
      submit(rpcOp(1, 'eth_getBalance', ['0xa'])),
    ];
    await clock.advance(5);
    expect(upstream.calls.map((c) => c.ops.map((o) => [o.id, o.path]))).toEqual([
      [
        [0, 'eth_blockNumber'],
        [1, 'eth_blockNumber'],
        [2, 'eth_getBalance'],
      ],
    ]);
    const got = (await Promise.all(answers)).map(bodyOf);
    expect(got.map((b) => b.id)).toEqual([1, 1, 2, 1]);
    expect(got[3]).toEqual({ jsonrpc: '2.0', id: 1, result: { method: 'eth_getBalance', params: ['0xa'] } });
  });

  it('never collapses identical writes, and sends a write apart from the reads around it', async () => {
    const { clock, upstream, submit } = engine();
    const answers = [
      submit(rpcOp(1, 'counter_get', ['k'])),
      submit(rpcOp(2, 'counter_add', ['k', 1])),
      submit(rpcOp(2, 'counter_add', ['k', 1])),
      submit(rpcOp(3, 'counter_get', ['k'])),
    ];
    for (let i = 0; i < 5 && upstream.calls.length < 4; i++) await clock.advance(5);
    expect(upstream.calls.map((c) => c.paths)).toEqual([
      ['counter_get'],
      ['counter_add'],
      ['counter_add'],
      ['counter_get'],
    ]);
    expect((await Promise.all(answers)).map((a) => bodyOf(a).id)).toEqual([1, 2, 2, 3]);
  });

  it('resends a read after a 5xx, never a write', async () => {
    const { clock, upstream, submit } = engine(3);
    upstream.script.push(() => ({ status: 503, headers: {}, body: '' }));
    const write = submit(rpcOp('w', 'counter_add', ['k', 1]));
    await clock.advance(5);
    expect(bodyOf(await write)).toMatch(/^PROXY_/);
    expect(upstream.calls).toHaveLength(1);

    upstream.script.push(() => ({ status: 503, headers: {}, body: '' }));
    const read = submit(rpcOp('r', 'counter_get', ['k']));
    for (let i = 0; i < 20 && upstream.calls.length < 3; i++) await clock.advance(1_000);
    expect(bodyOf(await read)).toMatchObject({ id: 'r', result: { method: 'counter_get' } });
    expect(upstream.calls.map((c) => c.paths)).toEqual([['counter_add'], ['counter_get'], ['counter_get']]);
  });
});
