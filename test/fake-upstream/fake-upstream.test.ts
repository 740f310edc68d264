import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type FakeCall, type FakeUpstream, signAppToken, startFakeUpstream } from './index.js';

const APP = 'app1';
const SECRET = 'sk_test_app1';
const AUTH = `Bearer ${SECRET}`;

type Result = [number, unknown, unknown];

function call(
  fake: FakeUpstream,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(`${fake.url}${path}`, {
    method,
    headers: {
      authorization: AUTH,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

function batch(fake: FakeUpstream, ops: unknown, headers: Record<string, string> = {}, app = APP) {
  return call(fake, 'POST', `/v1/${app}/batch`, ops, headers);
}

async function batchResults(fake: FakeUpstream, ops: unknown): Promise<Result[]> {
  const res = await batch(fake, ops);
  expect(res.status).toBe(200);
  return (await res.json()) as Result[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fake upstream', () => {
  let fake: FakeUpstream;
  beforeAll(async () => {
    fake = await startFakeUpstream({ apps: { [APP]: SECRET, app2: 'sk_test_app2' }, seed: 42 });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.reset());

  describe('auth', () => {
    it('accepts the secret key and a valid app JWT', async () => {
      expect((await call(fake, 'GET', `/v1/${APP}/users`)).status).toBe(200);
      const jwt = signAppToken(APP, SECRET);
      const res = await call(fake, 'GET', `/v1/${APP}/users`, undefined, { authorization: `Bearer ${jwt}` });
      expect(res.status).toBe(200);
      expect(fake.executed.map((e) => e.credential)).toEqual([AUTH, `Bearer ${jwt}`]);
    });

    it.each([
      ['no header', undefined],
      ['another app secret', 'Bearer sk_test_app2'],
      ['not bearer', `Basic ${SECRET}`],
      ['wrong iss', `Bearer ${signAppToken('app2', SECRET)}`],
      ['expired', `Bearer ${signAppToken(APP, SECRET, { expiresInSec: -1 })}`],
      ['user token', `Bearer ${signAppToken(APP, SECRET, { claims: { tokenType: 'user' } })}`],
      ['wrong key', `Bearer ${signAppToken(APP, 'sk_other')}`],
      ['tampered', `Bearer ${signAppToken(APP, SECRET).slice(0, -2)}xx`],
      [
        'alg none',
        `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"iss":"${APP}","tokenType":"app","exp":9999999999}`).toString('base64url')}.`,
      ],
    ])('answers 401 for %s and executes nothing', async (_name, authorization) => {
      const res = await fetch(`${fake.url}/v1/${APP}/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify([[1, 'GET', '/users']]),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/json');
      await res.json();
      expect(fake.stats.unauthorized).toBe(1);
      expect(fake.executed).toEqual([]);
    });
  });

  describe('routes and resources', () => {
    it('answers 404 JSON for an unknown app and a JSON string for an unknown route', async () => {
      const app = await call(fake, 'GET', '/v1/nope/users/u1');
      expect(app.status).toBe(404);
      expect(await app.json()).toMatchObject({ errorCode: 'APP_NOT_FOUND' });
      const route = await call(fake, 'GET', `/v1/${APP}/non/existing/endpoint`);
      expect(route.status).toBe(404);
      expect(await route.json()).toBe('Could not find route GET /non/existing/endpoint');
    });

    it('creates, merges, reads and deletes a user', async () => {
      const put = await call(fake, 'PUT', `/v1/${APP}/users/u%201`, { name: 'Alice', custom: { a: '1' } });
      expect(put.status).toBe(200);
      expect(await put.json()).toEqual({});
      await call(fake, 'PUT', `/v1/${APP}/users/u%201`, { email: ['a@x'], custom: { b: '2' } });
      const get = await call(fake, 'GET', `/v1/${APP}/users/u%201`);
      expect(await get.json()).toMatchObject({
        id: 'u 1',
        name: 'Alice',
        email: ['a@x'],
        custom: { a: '1', b: '2' },
      });
      expect((await call(fake, 'DELETE', `/v1/${APP}/users/u%201`)).status).toBe(200);
      expect((await call(fake, 'GET', `/v1/${APP}/users/u%201`)).status).toBe(404);
      expect(fake.executed.map((e) => [e.method, e.path, e.status, e.via])).toEqual([
        ['PUT', '/users/u%201', 200, 'single'],
        ['PUT', '/users/u%201', 200, 'single'],
        ['GET', '/users/u%201', 200, 'single'],
        ['DELETE', '/users/u%201', 200, 'single'],
        ['GET', '/users/u%201', 404, 'single'],
      ]);
    });

    it('keeps the apps apart', async () => {
      await call(fake, 'PUT', `/v1/${APP}/users/u1`, { name: 'A' });
      const other = await call(fake, 'GET', '/v1/app2/users/u1', undefined, {
        authorization: 'Bearer sk_test_app2',
      });
      expect(other.status).toBe(404);
    });

    it('rejects bad bodies: non-object PUT 400, no JSON content type 415, malformed JSON 400', async () => {
      expect((await call(fake, 'PUT', `/v1/${APP}/users/u1`, [1])).status).toBe(400);
      expect((await call(fake, 'PUT', `/v1/${APP}/users/u1`, { name: 3 })).status).toBe(400);
      const noType = await fetch(`${fake.url}/v1/${APP}/users/u1`, {
        method: 'PUT',
        headers: { authorization: AUTH, 'content-type': 'text/plain' },
        body: '{"name":"A"}',
      });
      expect(noType.status).toBe(415);
      expect((await call(fake, 'PUT', `/v1/${APP}/users/u1`, '{"name":')).status).toBe(400);
      const withCharset = await call(
        fake,
        'PUT',
        `/v1/${APP}/users/u1`,
        { name: 'A' },
        {
          'content-type': 'application/json; charset=utf-8',
        },
      );
      expect(withCharset.status).toBe(200);
      // Only the last one reached the resources.
      expect(fake.executed.map((e) => e.status)).toEqual([400, 400, 200]);
    });

    it('appends messages in order, answers their ids and lists them newest first', async () => {
      await call(fake, 'PUT', `/v1/${APP}/conversations/c1`, { participants: ['u1'], subject: 'hi' });
      const post = await call(fake, 'POST', `/v1/${APP}/conversations/c1/messages`, [
        { text: 'one', sender: 'u1', type: 'UserMessage' },
        { text: 'two', type: 'SystemMessage' },
      ]);
      expect(post.status).toBe(200);
      const ids = (await post.json()) as { id: string }[];
      expect(ids).toHaveLength(2);
      await call(fake, 'POST', `/v1/${APP}/conversations/c1/messages`, [{ text: 'three', sender: 'u1' }]);
      const list = await call(fake, 'GET', `/v1/${APP}/conversations/c1/messages?limit=2`);
      const { data } = (await list.json()) as {
        data: { text: string; id: string; senderId: string | null }[];
      };
      expect(data.map((m) => m.text)).toEqual(['three', 'two']);
      expect(data[1]?.id).toBe(ids[1]?.id);
      expect(fake.executed.at(-1)?.query).toEqual({ limit: '2' });
      const conv = await (await call(fake, 'GET', `/v1/${APP}/conversations/c1`)).json();
      expect(conv).toMatchObject({ id: 'c1', subject: 'hi', participants: { u1: { access: 'ReadWrite' } } });
    });

    it('refuses messages to a missing conversation, from a non-participant, or not as an array', async () => {
      expect(
        (await call(fake, 'POST', `/v1/${APP}/conversations/nope/messages`, [{ text: 'x' }])).status,
      ).toBe(404);
      await call(fake, 'PUT', `/v1/${APP}/conversations/c1`, { participants: ['u1'] });
      const stranger = [{ text: 'x', sender: 'u2', type: 'UserMessage' }];
      expect((await call(fake, 'POST', `/v1/${APP}/conversations/c1/messages`, stranger)).status).toBe(400);
      expect((await call(fake, 'POST', `/v1/${APP}/conversations/c1/messages`, { text: 'x' })).status).toBe(
        400,
      );
      expect(
        (await call(fake, 'POST', `/v1/${APP}/conversations/c1/messages`, Array(11).fill({ text: 'x' })))
          .status,
      ).toBe(400);
      const list = await (await call(fake, 'GET', `/v1/${APP}/conversations/c1/messages`)).json();
      expect(list).toEqual({ data: [] });
    });

    it('records the TalkJS-REST-Version header', async () => {
      await call(fake, 'GET', `/v1/${APP}/users`, undefined, { 'TalkJS-REST-Version': '2021-02-09' });
      expect(fake.executed[0]?.apiVersion).toBe('2021-02-09');
    });
  });

  describe('batch', () => {
    it('runs the documented example and answers one result per op', async () => {
      await call(fake, 'PUT', `/v1/${APP}/conversations/conv_01`, { participants: ['user_01'] });
      fake.executed.length = 0;
      const results = await batchResults(fake, [
        [1, 'GET', '/users/user_01'],
        [2, 'GET', '/users/user_01/conversations', { limit: '30', unreadsOnly: 'true' }],
        [
          3,
          'POST',
          '/conversations/conv_01/messages',
          [{ text: 'This is a system message', type: 'SystemMessage' }],
        ],
        [4, 'PUT', '/users/user_02', { name: 'Alice' }, { api_version: '2021-01-01' }],
        [5, 'GET', '/non/existing/endpoint'],
      ]);
      const bySeq = new Map(results.map(([seq, status, body]) => [seq, [status, body]]));
      expect(bySeq.size).toBe(5);
      expect(bySeq.get(1)?.[0]).toBe(404);
      expect(bySeq.get(3)).toEqual([200, [{ id: expect.any(String) }]]);
      expect(bySeq.get(4)).toEqual([200, {}]);
      expect(bySeq.get(5)).toEqual([404, 'Could not find route GET /non/existing/endpoint']);
      expect(fake.stats.batchSizes).toEqual([5]);
      const put = fake.executed.find((e) => e.seq === 4);
      expect(put).toMatchObject({
        via: 'batch',
        method: 'PUT',
        path: '/users/user_02',
        apiVersion: '2021-01-01',
      });
      expect(put?.credential).toBe(AUTH);
      expect(new Set(fake.executed.map((e) => e.callId)).size).toBe(1);
      expect(fake.executed.find((e) => e.seq === 2)?.query).toEqual({ limit: '30', unreadsOnly: 'true' });
    });

    it('answers 400 for the whole call with more than 10 ops, and executes none', async () => {
      const ops = Array.from({ length: 11 }, (_, i) => [i, 'GET', `/users/u${i}`]);
      const res = await batch(fake, ops);
      expect(res.status).toBe(400);
      expect(fake.executed).toEqual([]);
      expect((await batch(fake, ops.slice(0, 10))).status).toBe(200);
      expect(fake.executed).toHaveLength(10);
    });

    it.each([
      ['not an array', { ops: [] }],
      ['empty', []],
      ['an op that is not a tuple', [{ seq: 1 }]],
      ['a string seq', [['1', 'GET', '/users']]],
      ['an unknown method', [[1, 'HEAD', '/users']]],
      [
        'duplicate seqs',
        [
          [1, 'GET', '/users'],
          [1, 'GET', '/users'],
        ],
      ],
      ['malformed JSON', '[[1, "GET"'],
    ])('answers 400 for a body that is %s', async (_name, body) => {
      const res = await batch(fake, body);
      expect(res.status).toBe(400);
      expect(fake.executed).toEqual([]);
    });

    it('answers 400 for one op with a non-string GET payload or a query in its path', async () => {
      const results = await batchResults(fake, [
        [1, 'GET', '/users', { limit: 3 }],
        [2, 'GET', '/users?limit=3'],
        [3, 'GET', '/users', { limit: '3' }],
      ]);
      const status = Object.fromEntries(results.map(([seq, s]) => [seq, s]));
      expect(status).toEqual({ 1: 400, 2: 400, 3: 200 });
      expect(fake.executed.map((e) => e.seq)).toEqual([3]);
    });

    it('executes ops and orders results randomly, reproducibly per seed', async () => {
      const ops = Array.from({ length: 10 }, (_, i) => [i, 'PUT', `/users/u${i}`, { name: `n${i}` }]);
      const execOrders: number[][] = [];
      const resultOrders: number[][] = [];
      for (let i = 0; i < 4; i++) {
        fake.executed.length = 0;
        resultOrders.push((await batchResults(fake, ops)).map(([seq]) => seq));
        execOrders.push(fake.executed.map((e) => e.seq ?? -1));
      }
      const sorted = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
      for (const order of [...execOrders, ...resultOrders])
        expect([...order].sort((a, b) => a - b)).toEqual(sorted);
      expect(execOrders.some((o) => o.join() !== sorted.join())).toBe(true);
      expect(resultOrders.some((o) => o.join() !== sorted.join())).toBe(true);
      expect(new Set(execOrders.map((o) => o.join())).size).toBeGreaterThan(1);

      const twin = await startFakeUpstream({ apps: { [APP]: SECRET }, seed: 42 });
      try {
        await batchResults(twin, ops);
        fake.reset();
        await batchResults(fake, ops);
        expect(twin.executed.map((e) => e.seq)).toEqual(fake.executed.map((e) => e.seq));
      } finally {
        await twin.close();
      }
    });

    it('numbers executions globally across calls', async () => {
      await batchResults(fake, [
        [1, 'GET', '/users'],
        [2, 'GET', '/users'],
      ]);
      await call(fake, 'GET', `/v1/${APP}/users`);
      expect(fake.executed.map((e) => e.executedAt)).toEqual([1, 2, 3]);
      expect(fake.executed.map((e) => e.callId)).toEqual([1, 1, 2]);
    });
  });

  describe('faults', () => {
    const ops = [
      [1, 'PUT', '/users/a', { name: 'A' }],
      [2, 'PUT', '/users/b', { name: 'B' }],
      [3, 'GET', '/users/a'],
    ];

    it('status: answers 503 without executing; with afterExecute executes first', async () => {
      fake.faults.queue.push({ status: 503 }, { status: 502, afterExecute: true });
      const first = await batch(fake, ops);
      expect(first.status).toBe(503);
      expect(await first.json()).toMatchObject({ errorCode: 'INJECTED_FAULT' });
      expect(fake.executed).toEqual([]);
      expect((await batch(fake, ops)).status).toBe(502);
      expect(fake.executed).toHaveLength(3);
      expect((await batch(fake, ops)).status).toBe(200);
      expect(fake.stats.faultsApplied).toBe(2);
    });

    it('status 429 carries Retry-After and is not counted as a limiter refusal', async () => {
      fake.faults.queue.push({ status: 429, retryAfterSec: 7 });
      const res = await batch(fake, ops);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(fake.stats.rejected429).toEqual({ batch: 0, rest: 0 });
      expect(fake.executed).toEqual([]);
    });

    it('delayMs: executes at once and answers late; delayBeforeExecute executes late', async () => {
      fake.faults.queue.push({ delayMs: 200 });
      let settled = false;
      const t0 = performance.now();
      const pending = batch(fake, ops).finally(() => {
        settled = true;
      });
      await vi.waitFor(() => expect(fake.executed).toHaveLength(3), { interval: 5 });
      expect(settled).toBe(false);
      expect((await pending).status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(199);

      fake.executed.length = 0;
      fake.faults.queue.push({ delayMs: 200, delayBeforeExecute: true });
      const t1 = performance.now();
      const late = batch(fake, ops);
      await vi.waitFor(() => expect(fake.executed).toHaveLength(3), { interval: 5, timeout: 5000 });
      expect(performance.now() - t1).toBeGreaterThanOrEqual(199);
      expect((await late).status).toBe(200);
    });

    it('reset before-execute: the socket dies and nothing ran', async () => {
      fake.faults.queue.push({ reset: 'before-execute' });
      await expect(batch(fake, ops)).rejects.toThrow();
      expect(fake.executed).toEqual([]);
    });

    it('reset after-execute: the socket dies after every op ran', async () => {
      fake.faults.queue.push({ reset: 'after-execute' });
      await expect(batch(fake, ops)).rejects.toThrow();
      expect(fake.executed).toHaveLength(3);
    });

    it('truncateBody: headers arrive, the body breaks off', async () => {
      fake.faults.queue.push({ truncateBody: true });
      const res = await batch(fake, ops);
      expect(res.status).toBe(200);
      await expect(res.text()).rejects.toThrow();
      expect(fake.executed).toHaveLength(3);
    });

    it('notJson and notArray', async () => {
      fake.faults.queue.push({ notJson: true }, { notArray: true });
      const html = await batch(fake, ops);
      expect(html.headers.get('content-type')).toBe('text/html');
      await expect(html.json()).rejects.toThrow();
      expect(await (await batch(fake, ops)).json()).toEqual({ ok: true });
      expect(fake.executed).toHaveLength(6);
    });

    it('dropResultSeq, duplicateResultSeq, unknownResultSeq, badStatus', async () => {
      fake.faults.queue.push(
        { dropResultSeq: [2] },
        { duplicateResultSeq: [1] },
        { unknownResultSeq: true },
        { badStatus: [3] },
        { badStatus: true },
      );
      const seqs = async () => ((await (await batch(fake, ops)).json()) as Result[]).map(([s]) => s).sort();
      expect(await seqs()).toEqual([1, 3]);
      expect(await seqs()).toEqual([1, 1, 2, 3]);
      const withUnknown = await seqs();
      expect(withUnknown).toHaveLength(4);
      expect(withUnknown.filter((s) => ![1, 2, 3].includes(s))).toHaveLength(1);
      const some = (await (await batch(fake, ops)).json()) as Result[];
      expect(Object.fromEntries(some.map(([s, st]) => [s, typeof st]))).toEqual({
        1: 'number',
        2: 'number',
        3: 'string',
      });
      const all = (await (await batch(fake, ops)).json()) as Result[];
      expect(all.every(([, st]) => st === '200')).toBe(true);
      expect(fake.executed).toHaveLength(15);
    });

    it('targets batch calls by default, single calls with on, and one app with appId', async () => {
      fake.faults.queue.push({ status: 500, appId: 'app2' }, { status: 502, on: 'single' });
      expect((await batch(fake, ops)).status).toBe(200);
      expect((await call(fake, 'GET', `/v1/${APP}/users`)).status).toBe(502);
      expect((await call(fake, 'GET', `/v1/${APP}/users`)).status).toBe(200);
      expect(fake.faults.queue).toEqual([{ status: 500, appId: 'app2' }]);
      expect((await batch(fake, ops, { authorization: 'Bearer sk_test_app2' }, 'app2')).status).toBe(500);
      expect(fake.faults.queue).toEqual([]);
    });

    it('always applies until cleared; random applies with the given probability', async () => {
      fake.faults.always = { status: 503 };
      expect((await batch(fake, ops)).status).toBe(503);
      expect((await batch(fake, ops)).status).toBe(503);
      fake.faults.always = undefined;
      expect((await batch(fake, ops)).status).toBe(200);
      fake.faults.random = { probability: 0.5, faults: [{ status: 500 }] };
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await batch(fake, [[1, 'GET', '/users']])).status);
      const failed = statuses.filter((s) => s === 500).length;
      expect(failed).toBeGreaterThan(5);
      expect(failed).toBeLessThan(35);
    });
  });
});

describe('fake upstream latency', () => {
  it('adds latencyMs to every answer and exposes its seed', async () => {
    const fake = await startFakeUpstream({ apps: { [APP]: SECRET }, latencyMs: () => 80 });
    try {
      expect(Number.isInteger(fake.seed)).toBe(true);
      const t0 = performance.now();
      expect((await call(fake, 'GET', `/v1/${APP}/users`)).status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(79);
    } finally {
      await fake.close();
    }
  });
});

describe('fake upstream rate limits', () => {
  let fake: FakeUpstream;
  beforeAll(async () => {
    fake = await startFakeUpstream({
      apps: { [APP]: SECRET, app2: 'sk_test_app2' },
      limits: { batch: { ratePerSec: 2, burst: 2 }, rest: { ratePerSec: 0.4, burst: 1 } },
    });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.reset());

  it('admits the burst, refuses the next with Retry-After, and admits again after one interval', async () => {
    const op = [[1, 'GET', '/users']];
    expect((await batch(fake, op)).status).toBe(200);
    expect((await batch(fake, op)).status).toBe(200);
    const refused = await batch(fake, op);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ errorCode: 'RATE_LIMITED' });
    expect(fake.stats.rejected429).toEqual({ batch: 1, rest: 0 });
    expect(fake.executed).toHaveLength(2);
    // The interval is 500 ms; 600 ms later exactly one more call fits.
    await sleep(600);
    expect((await batch(fake, op)).status).toBe(200);
    expect((await batch(fake, op)).status).toBe(429);
    expect(fake.stats.batchCalls).toBe(5);
    expect(fake.stats.batchSizes).toEqual([1, 1, 1]);
  });

  it('keeps the batch and rest buckets, and the apps, apart', async () => {
    expect((await call(fake, 'GET', `/v1/${APP}/users`)).status).toBe(200);
    const refused = await call(fake, 'GET', `/v1/${APP}/users`);
    expect(refused.status).toBe(429);
    // 0.4/s: the next slot is 2.5 s away, rounded up.
    expect(refused.headers.get('retry-after')).toBe('3');
    expect((await batch(fake, [[1, 'GET', '/users']])).status).toBe(200);
    const other = await call(fake, 'GET', '/v1/app2/users', undefined, {
      authorization: 'Bearer sk_test_app2',
    });
    expect(other.status).toBe(200);
    expect(fake.stats.rejected429).toEqual({ batch: 0, rest: 1 });
  });

  it('refuses on arrival, before the body has been sent', async () => {
    const op = [[1, 'GET', '/users']];
    expect((await batch(fake, op)).status).toBe(200);
    expect((await batch(fake, op)).status).toBe(200);
    const { port } = new URL(fake.url);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/v1/${APP}/batch`,
        headers: { authorization: AUTH, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
        req.destroy();
      });
      req.on('error', reject);
      req.write('[[1,');
      req.flushHeaders();
    });
    expect(status).toBe(429);
  });

  it('applies new limits from setLimits on, with fresh buckets', async () => {
    const ops = [[1, 'GET', '/users']];
    fake.setLimits({});
    for (let i = 0; i < 3; i++) expect((await batch(fake, ops)).status).toBe(200);
    fake.setLimits({ batch: { ratePerSec: 1, burst: 1 } });
    expect((await batch(fake, ops)).status).toBe(200);
    expect((await batch(fake, ops)).status).toBe(429);
  });

  it('counts arrivals that fail auth against the bucket', async () => {
    const bad = await batch(fake, [[1, 'GET', '/users']], { authorization: 'Bearer nope' });
    expect(bad.status).toBe(401);
    expect((await batch(fake, [[1, 'GET', '/users']])).status).toBe(200);
    expect((await batch(fake, [[1, 'GET', '/users']])).status).toBe(429);
  });
});

describe('request log', () => {
  it('reports every answered call once, with the ops of an executed batch', async () => {
    const calls: FakeCall[] = [];
    const logged = await startFakeUpstream({
      apps: { [APP]: SECRET },
      seed: 7,
      onCall: (c) => calls.push(c),
    });
    try {
      const ops = [
        [1, 'GET', '/users/a'],
        [2, 'PUT', '/users/b', { name: 'B' }],
      ];
      expect((await batch(logged, ops)).status).toBe(200);
      expect((await call(logged, 'GET', `/v1/${APP}/users/zz?x=1`)).status).toBe(404);
      expect((await batch(logged, [], { authorization: 'Bearer nope' })).status).toBe(401);
      // 'finish' fires after the client has its answer; the third answer's event may still be queued.
      await vi.waitFor(() => expect(calls).toHaveLength(3));
      expect(calls.map(({ ms: _, ...c }) => c)).toEqual([
        { callId: 1, method: 'POST', target: `/v1/${APP}/batch`, status: 200, ops: 2 },
        { callId: 2, method: 'GET', target: `/v1/${APP}/users/zz?x=1`, status: 404 },
        { callId: 3, method: 'POST', target: `/v1/${APP}/batch`, status: 401 },
      ]);
      for (const c of calls) expect(c.ms).toBeGreaterThanOrEqual(0);
    } finally {
      await logged.close();
    }
  });
});
