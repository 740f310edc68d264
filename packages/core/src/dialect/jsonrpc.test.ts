// The JSON-RPC dialect's own rules, beyond the conformance suite: which calls become ops, which are
// writes, how the caller's id is swapped for the proxy's and put back, what counts as a response.

import { describe, expect, it } from 'vitest';
import type { OpInput, OpRequest } from './dialect.js';
import { globPattern, JSONRPC_MAX_OPS, jsonrpc, jsonrpcDialect, parseMethodGlobs } from './jsonrpc.js';

const dialect = jsonrpcDialect({ writeMethods: ['eth_send*', 'personal_?ign'] });

const input = (body: string | undefined, over: Partial<OpInput> = {}): OpInput => ({
  method: 'POST',
  target: { appId: '/rpc', path: '/rpc' },
  query: new URLSearchParams(),
  body,
  apiVersion: undefined,
  search: '',
  ...over,
});

const call = (method: string, id: unknown = 1, params = '[]') =>
  `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"${method}","params":${params}}`;

function op(body: string): OpRequest {
  const built = dialect.toOp(input(body));
  if ('passThrough' in built) throw new Error(built.passThrough);
  return built.op;
}

describe('jsonrpc toOp', () => {
  it('makes a POST request object an op on its endpoint, the body as received', () => {
    const body = call('eth_getBalance', 'a', '["0x1", "latest"]');
    expect(op(body)).toEqual({
      method: 'POST',
      path: '/rpc',
      query: {},
      body,
      apiVersion: undefined,
      write: false,
      retrySafe: true,
    });
  });

  it.each([
    ['eth_sendRawTransaction', true],
    ['eth_send', true],
    ['xeth_send', false],
    ['eth_sen', false],
    ['personal_sign', true],
    ['personal_ssign', false],
    ['Eth_sendRawTransaction', false],
    ['eth_call', false],
  ])('%s is a write: %s (a write is never retry-safe)', (method, write) => {
    expect(op(call(method))).toMatchObject({ write, retrySafe: !write });
  });

  it('makes every method a read when no write is listed', () => {
    const built = jsonrpc.toOp(input(call('eth_sendRawTransaction')));
    expect(built).toMatchObject({ op: { write: false, retrySafe: true } });
  });

  it.each([
    ['GET', 'method'],
    ['PUT', 'method'],
    ['DELETE', 'method'],
  ] as const)('passes a %s through (reason %s)', (method, reason) => {
    expect(dialect.toOp(input(call('eth_call'), { method }))).toMatchObject({ reason });
  });

  it.each(['?key=1', '?'])('passes a query string through, but not an empty one (%s)', (search) => {
    const built = dialect.toOp(input(call('eth_call'), { search }));
    if (search === '?') expect(built).toHaveProperty('op');
    else expect(built).toMatchObject({ reason: 'query' });
  });

  it('reads a call without a search as having none', () => {
    const { search: _, ...without } = input(call('eth_call'));
    expect(dialect.toOp(without)).toHaveProperty('op');
  });

  it.each([
    ['no body', undefined, 'body'],
    ["the caller's own array", `[${call('eth_call')}]`, 'client-batch'],
    ['an empty array', '[]', 'client-batch'],
    ['a notification', '{"jsonrpc":"2.0","method":"eth_subscribe","params":[]}', 'notification'],
    ['a string', '"hello"', 'body'],
    ['text that is not JSON', '{"jsonrpc":', 'body'],
    ['null', 'null', 'body'],
    ['JSON-RPC 1.0', '{"id":1,"method":"eth_call","params":[]}', 'body'],
    ['version 2', '{"jsonrpc":2,"id":1,"method":"eth_call"}', 'body'],
    ['a numeric method', '{"jsonrpc":"2.0","id":1,"method":5}', 'body'],
    ['scalar params', '{"jsonrpc":"2.0","id":1,"method":"m","params":5}', 'body'],
    ['string params', '{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}', 'body'],
    ['id null', call('m', null), 'body'],
    ['a fractional id', '{"jsonrpc":"2.0","id":1.5,"method":"m"}', 'body'],
    ['an id beyond 2^53', '{"jsonrpc":"2.0","id":9007199254740993,"method":"m"}', 'body'],
    ['an object id', '{"jsonrpc":"2.0","id":{},"method":"m"}', 'body'],
    ['a boolean id', '{"jsonrpc":"2.0","id":true,"method":"m"}', 'body'],
    ['two ids', '{"jsonrpc":"2.0","id":1,"method":"m","id":2}', 'body'],
    ['two ids, one escaped', '{"jsonrpc":"2.0","id":1,"method":"m","\\u0069d":2}', 'body'],
  ])('passes %s through', (_, body, reason) => {
    expect(dialect.toOp(input(body))).toMatchObject({ reason });
  });

  it.each([
    ['no params', '{"jsonrpc":"2.0","id":1,"method":"m"}'],
    ['object params', '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}'],
    ['params null', '{"jsonrpc":"2.0","id":1,"method":"m","params":null}'],
    ['a negative id', '{"jsonrpc":"2.0","id":-9007199254740991,"method":"m"}'],
    ['an empty string id', '{"jsonrpc":"2.0","id":"","method":"m"}'],
  ])('batches a call with %s', (_, body) => {
    expect(dialect.toOp(input(body))).toHaveProperty('op');
  });
});

describe('jsonrpc batch and single requests', () => {
  it('sends the batch to the endpoint, each request spliced as received with its id numbered', () => {
    const ops = [
      op('{ "id" : "abc" , "jsonrpc":"2.0","method":"a","params":[2.50, {"id": 9}]}'),
      op('{"jsonrpc":"2.0","method":"b","params":{"x":"}"},\n"id":\n77 }'),
    ];
    const request = dialect.batchRequest('/rpc', ops);
    expect(request).toEqual({
      method: 'POST',
      path: '/rpc',
      headers: { 'content-type': 'application/json' },
      body:
        '[{ "id" : 0 , "jsonrpc":"2.0","method":"a","params":[2.50, {"id": 9}]},' +
        '{"jsonrpc":"2.0","method":"b","params":{"x":"}"},\n"id":\n1 }]',
    });
  });

  it('replaces an id written with an escape', () => {
    const request = dialect.batchRequest('/rpc', [op('{"jsonrpc":"2.0","method":"a","\\u0069d":"x"}')]);
    expect(JSON.parse(request.body ?? '')).toEqual([{ jsonrpc: '2.0', method: 'a', id: 0 }]);
  });

  it('sends a single call as the caller sent it, its own id and all', () => {
    const body = call('eth_call', 'mine');
    expect(dialect.singleRequest('/rpc/key', op(body))).toEqual({
      method: 'POST',
      path: '/rpc/key',
      headers: { 'content-type': 'application/json' },
      body,
    });
  });
});

describe('jsonrpc answers', () => {
  const ops = [op(call('a', 'first')), op(call('b', 2)), op(call('c', 'third'))];
  const read = (body: unknown, count = 3) =>
    dialect.readBatchAnswer(200, JSON.stringify(body), count, undefined, { ops, headers: {} });

  it("gives each caller its answer with its own id, the upstream's member order kept", () => {
    const answer = read([
      { jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'Method not found' } },
      { jsonrpc: '2.0', result: '0x1', id: 0 },
      { id: 1, jsonrpc: '2.0', result: null },
    ]);
    expect(answer).toEqual({
      kind: 'results',
      results: [
        { ok: true, status: 200, body: { jsonrpc: '2.0', result: '0x1', id: 'first' } },
        { ok: true, status: 200, body: { id: 2, jsonrpc: '2.0', result: null } },
        {
          ok: true,
          status: 200,
          body: { jsonrpc: '2.0', id: 'third', error: { code: -32601, message: 'Method not found' } },
        },
      ],
    });
    if (answer.kind !== 'results') return;
    expect(Object.keys((answer.results[0] as { body: object }).body)).toEqual(['jsonrpc', 'result', 'id']);
  });

  it.each([
    ['no jsonrpc member', { id: 1, result: 1 }],
    ['jsonrpc 1.0', { jsonrpc: '1.0', id: 1, result: 1 }],
    ['neither result nor error', { jsonrpc: '2.0', id: 1 }],
    ['both result and error', { jsonrpc: '2.0', id: 1, result: 1, error: { code: 1, message: 'x' } }],
    ['an error that is a string', { jsonrpc: '2.0', id: 1, error: 'bad' }],
    ['an error without a code', { jsonrpc: '2.0', id: 1, error: { message: 'bad' } }],
    ['a fractional error code', { jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'bad' } }],
    ['an error without a message', { jsonrpc: '2.0', id: 1, error: { code: -1 } }],
  ])('fails only the op whose entry has %s', (_, entry) => {
    const answer = read([{ jsonrpc: '2.0', id: 0, result: 0 }, entry, { jsonrpc: '2.0', id: 2, result: 2 }]);
    if (answer.kind !== 'results') throw new Error(answer.kind);
    expect(answer.results.map((r) => r.ok)).toEqual([true, false, true]);
  });

  it('passes over entries with an id the proxy never sent (a string, a caller id, out of range)', () => {
    const answer = read([
      { jsonrpc: '2.0', id: '1', result: 'string id' },
      { jsonrpc: '2.0', id: 'first', result: 'caller id' },
      { jsonrpc: '2.0', id: 3, result: 'out of range' },
      { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } },
      'not an object',
      { jsonrpc: '2.0', id: 1, result: 'mine' },
    ]);
    if (answer.kind !== 'results') throw new Error(answer.kind);
    expect(answer.results[1]).toMatchObject({ ok: true, body: { id: 2, result: 'mine' } });
    expect(answer.results.map((r) => r.ok)).toEqual([false, true, false]);
  });

  it('answers every op 502 when the upstream answers the batch with one error object', () => {
    const answer = read({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request' } });
    if (answer.kind !== 'results') throw new Error(answer.kind);
    expect(answer.results).toEqual(
      Array.from({ length: 3 }, () => ({
        ok: false,
        reason: 'the batch response has no result for this operation',
      })),
    );
  });

  it("fails an op whose caller's id it cannot know (no batch context)", () => {
    const answer = dialect.readBatchAnswer(200, '[{"jsonrpc":"2.0","id":0,"result":1}]', 1);
    if (answer.kind !== 'results') throw new Error(answer.kind);
    expect(answer.results).toEqual([
      { ok: false, reason: "the caller's id for this operation is unknown (no batch context)" },
    ]);
  });
});

describe('jsonrpc dialect settings', () => {
  it('names itself, batches 100 entries by default, counts per op, carries no header', () => {
    expect(jsonrpc).toMatchObject({ name: 'jsonrpc', maxOps: 100, cost: 'op', apiVersionHeader: '' });
    expect(JSONRPC_MAX_OPS).toBe(100);
    expect(jsonrpcDialect({ maxOps: 7 }).maxOps).toBe(7);
    expect(jsonrpc.requestHeader('authorization')).toBe('drop');
    expect(jsonrpc.requestHeader('x-api-key')).toBe('pass');
    expect(jsonrpc.answerHeaders({ etag: '"1"' })).toEqual({});
  });

  it('takes any path as an endpoint, and none as the batch endpoint', () => {
    expect(jsonrpc.parseTarget('/v3/key')).toEqual({ appId: '/v3/key', path: '/v3/key' });
    expect(jsonrpc.parseTarget('/')).toEqual({ appId: '/', path: '/' });
    expect(jsonrpc.isBatchEndpoint({ appId: '/batch', path: '/batch' })).toBe(false);
  });

  it.each([
    ['eth_*', 'eth_call', true],
    ['eth_*', 'net_version', false],
    ['eth.call', 'eth_call', false],
    ['eth.call', 'eth.call', true],
    ['a+b', 'a+b', true],
    ['a+b', 'aab', false],
    ['*', '', true],
    ['m?', 'm', false],
    ['m?', 'mx', true],
    ['m?', 'mxy', false],
    ['(x)|y', '(x)|y', true],
    ['(x)|y', 'y', false],
  ])('glob %s matches %s: %s', (glob, method, matches) => {
    expect(globPattern(glob).test(method)).toBe(matches);
  });

  it('reads JSONRPC_WRITE_METHODS as globs separated by commas, blanks ignored', () => {
    expect(parseMethodGlobs(' eth_send* , personal_*,,')).toEqual(['eth_send*', 'personal_*']);
    expect(parseMethodGlobs('')).toEqual([]);
    expect(parseMethodGlobs(undefined)).toEqual([]);
  });
});
