import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { opOf } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { type BufferedResponse, upstreamFailure } from '../upstream/client.js';
import { errors as undiciErrors } from '../upstream/undici-pool.js';
import { ManualClock } from './clock.js';
import type { Answer } from './op.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

function json(status: number, body: unknown, headers: Record<string, string> = {}): BufferedResponse {
  return { status, headers, body: JSON.stringify(body) };
}

function setup(overrides: Partial<SchedulerOptions> = {}) {
  // An in-memory upstream: answers each op with its echo (method, path, payload, credential), in
  // reverse order; a single call with its own request. `script` overrides.
  const upstream = fakeTransport();
  upstream.order = (ops) => [...ops].reverse();
  upstream.answerOp = (o, call) => ({
    status: 200,
    body:
      call.lane === 'single'
        ? { single: true, method: call.request.method, path: call.request.path, auth: call.authorization }
        : { method: o.method, path: o.path, payload: o.body, auth: call.authorization },
  });
  const scheduler = new Scheduler(
    schedulerOptions({
      upstream,
      // Long enough that concurrent submissions always meet in one window, even on a loaded machine.
      windowMs: 50,
      maxWaitMs: 5_000,
      queueMaxOps: 1_000,
      maxAttempts: 3,
      ...overrides,
    }),
  );
  const submit = (o: OpRequest, credential = 'key-a', appId = 'app', signal?: AbortSignal) =>
    scheduler.submit({ appId, credential, op: o, ...(signal ? { signal } : {}) });
  /**
   * Sends what was just submitted without waiting for the window (tests that need ops to share a
   * batch set a long window: a short one can end between two submits when the machine is loaded).
   */
  const together = <T>(answers: Array<Promise<T>>): Promise<T[]> => {
    void scheduler.drain();
    return Promise.all(answers);
  };
  return { upstream, scheduler, submit, together };
}

function body(answer: Answer | undefined): unknown {
  if (answer === undefined) throw new Error('expected an answer');
  if (answer.kind !== 'result') throw new Error(`expected a result, got ${answer.error.code}`);
  return JSON.parse(answer.body);
}

/** What a caller got, exactly: status and parsed body, or the error code. */
function outcome(answer: Answer | undefined): unknown {
  if (answer === undefined) return undefined;
  if (answer.kind === 'error') return { error: answer.error.code, status: answer.error.status };
  return { status: answer.status, body: JSON.parse(answer.body) };
}

/** The echo the in-memory upstream gives a batched op of `path` under `auth`. */
function echoed(path: string, auth = 'key-a', method = 'GET', payload: unknown = {}) {
  return { status: 200, body: { method, path, payload, auth } };
}

describe('Scheduler', () => {
  it('packs concurrent ops of one group into one batch and gives each caller its own result', async () => {
    const { upstream, submit, together } = setup({ windowMs: 60_000 });
    const answers = await together([1, 2, 3].map((i) => submit(opOf('GET', `/users/u${i}`))));
    expect(upstream.calls).toHaveLength(1);
    expect(upstream.calls[0]?.ops).toHaveLength(3);
    answers.forEach((a, i) => {
      expect(body(a)).toMatchObject({ method: 'GET', path: `/users/u${i + 1}` });
      expect(a.timing).toMatchObject({ batchSize: 3, lane: 'batch' });
    });
  });

  it('never puts two credentials in one batch', async () => {
    const { upstream, submit } = setup();
    await Promise.all([submit(opOf('GET', '/users/a'), 'key-a'), submit(opOf('GET', '/users/b'), 'key-b')]);
    expect(upstream.calls.map((c) => [c.authorization, c.ops.length])).toEqual(
      expect.arrayContaining([
        ['key-a', 1],
        ['key-b', 1],
      ]),
    );
  });

  it('sends a full batch at once without waiting for the window', async () => {
    const { upstream, submit } = setup({ windowMs: 60_000 });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => submit(opOf('GET', `/users/u${i}`))),
    );
    expect(answers.every((a) => a.kind === 'result')).toBe(true);
    expect(upstream.calls).toHaveLength(1);
  });

  it('splits more ops than fit into several batches in arrival order', async () => {
    const { upstream, submit, together } = setup({ maxOps: 4, windowMs: 60_000 });
    await together(Array.from({ length: 10 }, (_, i) => submit(opOf('GET', `/users/u${i}`))));
    expect(upstream.calls.map((c) => c.paths)).toEqual([
      ['/users/u0', '/users/u1', '/users/u2', '/users/u3'],
      ['/users/u4', '/users/u5', '/users/u6', '/users/u7'],
      ['/users/u8', '/users/u9'],
    ]);
  });

  it('answers 502 for an op missing from the batch result and the rest normally', async () => {
    const { upstream, submit, together } = setup({ windowMs: 60_000 });
    upstream.script.push((call) =>
      json(
        200,
        call.ops.filter((o) => o.id !== 1).map((o) => [o.id, 200, { path: o.path }]),
      ),
    );
    const answers = await together([0, 1, 2].map((i) => submit(opOf('GET', `/users/u${i}`))));
    expect(answers.map(outcome)).toEqual([
      { status: 200, body: { path: '/users/u0' } },
      { error: 'PROXY_UPSTREAM_BAD_RESPONSE', status: 502 },
      { status: 200, body: { path: '/users/u2' } },
    ]);
  });

  it('answers 502 to ops whose sequence number comes back twice', async () => {
    const { upstream, submit, together } = setup({ windowMs: 60_000 });
    upstream.script.push(() =>
      json(200, [
        [0, 200, {}],
        [0, 200, {}],
        [1, 201, { ok: true }],
      ]),
    );
    const [a, b] = await together([submit(opOf('GET', '/users/a')), submit(opOf('GET', '/users/b'))]);
    expect(outcome(a)).toEqual({ error: 'PROXY_UPSTREAM_BAD_RESPONSE', status: 502 });
    expect(outcome(b)).toEqual({ status: 201, body: { ok: true } });
  });

  it('answers 502 to every op when the batch answer is not JSON', async () => {
    const { upstream, submit, together } = setup({ windowMs: 60_000 });
    upstream.script.push(() => ({ status: 200, headers: {}, body: '<html>' }));
    const answers = await together([submit(opOf('GET', '/users/a')), submit(opOf('PUT', '/users/b', {}))]);
    expect(answers.map(outcome)).toEqual([
      { error: 'PROXY_UPSTREAM_BAD_RESPONSE', status: 502 },
      { error: 'PROXY_UPSTREAM_BAD_RESPONSE', status: 502 },
    ]);
  });

  it('gives every op the upstream 401 when the shared credential is refused', async () => {
    const { upstream, submit, together } = setup({ windowMs: 60_000 });
    upstream.script.push(() => json(401, { error: 'bad key' }));
    const answers = await together([submit(opOf('GET', '/users/a')), submit(opOf('GET', '/users/b'))]);
    for (const a of answers) {
      expect(a.kind === 'result' && a.status).toBe(401);
      expect(body(a)).toEqual({ error: 'bad key' });
    }
  });

  it('re-queues ops after a 429 and sends them again once the pause is over', async () => {
    const limiter = new MemoryLimiter();
    const { upstream, submit, together } = setup({ limiter, windowMs: 60_000 });
    upstream.script.push(() => json(429, {}, { 'retry-after': '0.05' }));
    const started = performance.now();
    const answers = await together([
      submit(opOf('POST', '/conversations/c/messages', [{ text: 'x' }])),
      submit(opOf('GET', '/users/b')),
    ]);
    expect(answers.map(outcome)).toEqual([
      echoed('/conversations/c/messages', 'key-a', 'POST', [{ text: 'x' }]),
      echoed('/users/b'),
    ]);
    expect(upstream.calls).toHaveLength(2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
    expect(answers[0]?.timing?.attempts).toBe(1);
  });

  it('retries idempotent ops after a 5xx but answers a POST 502 so it never runs twice', async () => {
    const { upstream, submit, together } = setup({ windowMs: 60_000 });
    upstream.script.push(() => json(503, {}));
    const [get, post] = await together([
      submit(opOf('GET', '/users/a')),
      submit(opOf('POST', '/conversations/c/messages', [])),
    ]);
    expect(outcome(get)).toEqual(echoed('/users/a'));
    expect(outcome(post)).toEqual({ error: 'PROXY_UPSTREAM_UNAVAILABLE', status: 502 });
    const posts = upstream.calls.flatMap((c) => c.ops).filter((o) => o.method === 'POST');
    expect(posts).toHaveLength(1);
  });

  it('after a connection reset retries GET, PUT and DELETE, and answers POST and PATCH 502, sent once', async () => {
    const clock = new ManualClock();
    const { upstream, submit } = setup({ clock, random: () => 0.5 });
    // What the upstream client rejects with when the connection is reset under a call.
    upstream.script.push(() => upstreamFailure(new undiciErrors.SocketError('other side closed')));
    const answers = Promise.all([
      submit(opOf('GET', '/users/a')),
      submit(opOf('PUT', '/users/b', {})),
      submit(opOf('DELETE', '/users/c')),
      submit(opOf('POST', '/conversations/c/messages', [])),
      submit(opOf('PATCH', '/users/d', {})),
    ]);
    await clock.advance(1_000);
    const unavailable = { error: 'PROXY_UPSTREAM_UNAVAILABLE', status: 502 };
    expect((await answers).map(outcome)).toEqual([
      echoed('/users/a'),
      echoed('/users/b', 'key-a', 'PUT'),
      echoed('/users/c', 'key-a', 'DELETE'),
      unavailable,
      unavailable,
    ]);
    // The reset batch carried all five; the retry only the three that may run twice, in halves of the
    // failed batch (SPEC §8d: which op failed it is unknown).
    expect(upstream.calls.map((c) => c.ops.map((o) => o.method))).toEqual([
      ['GET', 'PUT', 'DELETE', 'POST', 'PATCH'],
      ['GET', 'PUT'],
      ['DELETE'],
    ]);
  });

  it('after a connection reset under a single call, answers a POST 502 and sends it once; retries a PUT', async () => {
    const clock = new ManualClock();
    const { upstream, submit } = setup({ clock, random: () => 0.5, singleOpDirect: true });
    const reset = () => upstreamFailure(new undiciErrors.SocketError('other side closed'));
    upstream.script.push(reset);
    const post = submit(opOf('POST', '/conversations/c/messages', []));
    await clock.advance(1_000);
    expect(outcome(await post)).toEqual({ error: 'PROXY_UPSTREAM_UNAVAILABLE', status: 502 });
    upstream.script.push(reset);
    const put = submit(opOf('PUT', '/users/b', {}));
    await clock.advance(1_000);
    expect(outcome(await put)).toMatchObject({ status: 200, body: { single: true, method: 'PUT' } });
    expect(upstream.calls.map((c) => `${c.request.method} ${c.request.path}`)).toEqual([
      'POST /v1/app/conversations/c/messages',
      'PUT /v1/app/users/b',
      'PUT /v1/app/users/b',
    ]);
  });

  it('answers 504 to a PATCH whose batch timed out', async () => {
    const { upstream, submit } = setup();
    upstream.script.push(() => new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'timeout'));
    const answer = await submit(opOf('PATCH', '/users/a', {}));
    expect(answer.kind === 'error' && answer.error.status).toBe(504);
  });

  it('gives up on an idempotent op after its attempt budget', async () => {
    const { upstream, submit } = setup({ maxAttempts: 2 });
    upstream.script.push(
      () => json(500, {}),
      () => json(500, {}),
      () => json(200, []),
    );
    const answer = await submit(opOf('GET', '/users/a'));
    expect(answer.kind === 'error' && answer.error.code).toBe('PROXY_UPSTREAM_UNAVAILABLE');
    expect(upstream.calls).toHaveLength(2);
  });

  it('answers 503 with Retry-After when no batch token comes before the deadline', async () => {
    const { upstream, submit } = setup({ batchLimit: { ratePerSec: 0.01, burst: 1 }, maxWaitMs: 100 });
    const first = await submit(opOf('GET', '/users/a'));
    expect(first.kind).toBe('result');
    const late = await submit(opOf('GET', '/users/b'));
    expect(late.kind === 'error' && late.error.code).toBe('PROXY_DEADLINE_EXCEEDED');
    expect(late.kind === 'error' && late.error.retryAfterSec).toBeGreaterThan(0);
    expect(upstream.calls).toHaveLength(1);
  });

  it('refuses with 429 beyond the queue bound without losing the queued ops', async () => {
    const { submit } = setup({ queueMaxOps: 2, windowMs: 20 });
    const answers = await Promise.all([1, 2, 3].map((i) => submit(opOf('GET', `/users/u${i}`))));
    expect(answers.map(outcome)).toEqual([
      echoed('/users/u1'),
      echoed('/users/u2'),
      { error: 'PROXY_QUEUE_FULL', status: 429 },
    ]);
  });

  it('never sends an op whose caller went away while it was queued', async () => {
    const { upstream, submit } = setup({ windowMs: 20 });
    const gone = new AbortController();
    const left = submit(opOf('PUT', '/users/gone', {}), 'key-a', 'app', gone.signal);
    const stays = submit(opOf('GET', '/users/stays'));
    gone.abort();
    expect((await left).kind === 'error').toBe(true);
    await stays;
    expect(upstream.calls.flatMap((c) => c.paths)).toEqual(['/users/stays']);
  });

  it('keeps writes to one resource in separate batches, in arrival order', async () => {
    const { upstream, submit } = setup();
    const texts = ['one', 'two', 'three'];
    await Promise.all([
      ...texts.map((text) => submit(opOf('POST', '/conversations/c1/messages', [{ text }]))),
      submit(opOf('GET', '/users/other')),
    ]);
    const batches = upstream.calls.map((c) => c.ops.map((o) => [o.path, o.body]));
    const posted = batches.flatMap((b) =>
      b.filter(([p]) => p === '/conversations/c1/messages').map(([, payload]) => payload),
    );
    expect(posted).toEqual(texts.map((text) => [{ text }]));
    for (const b of batches)
      expect(b.filter(([p]) => p === '/conversations/c1/messages').length).toBeLessThanOrEqual(1);
  });

  it('orders a read after a write to its parent resource', async () => {
    const { upstream, submit } = setup();
    await Promise.all([
      submit(opOf('PUT', '/conversations/c1', {})),
      submit(opOf('GET', '/conversations/c1/messages')),
    ]);
    expect(upstream.calls.map((c) => c.ops.map((o) => o.method))).toEqual([['PUT'], ['GET']]);
  });

  it('collapses identical concurrent reads into one op answered to every caller', async () => {
    const { upstream, submit } = setup();
    const answers = await Promise.all([1, 2, 3].map(() => submit(opOf('GET', '/users/same'))));
    expect(upstream.calls[0]?.ops).toHaveLength(1);
    for (const a of answers) expect(body(a)).toMatchObject({ path: '/users/same' });
  });

  it('does not let a read that follows a write join a read from before the write', async () => {
    const { upstream, submit } = setup();
    await Promise.all([
      submit(opOf('GET', '/users/u1')),
      submit(opOf('PUT', '/users/u1', { name: 'new' })),
      submit(opOf('GET', '/users/u1')),
    ]);
    expect(upstream.calls.map((c) => c.ops.map((o) => o.method))).toEqual([['GET'], ['PUT'], ['GET']]);
  });

  it('sends ops as single calls on the rest lane while the batch bucket is empty', async () => {
    const { upstream, submit } = setup({
      batchLimit: { ratePerSec: 0.1, burst: 1 },
      restLimit: { ratePerSec: 1000, burst: 100 },
    });
    const first = await Promise.all([submit(opOf('GET', '/users/a')), submit(opOf('GET', '/users/b'))]);
    expect(first.map((a) => a.timing?.lane)).toEqual(['batch', 'batch']);
    const later = await Promise.all([
      submit(opOf('GET', '/users/c')),
      submit(opOf('PUT', '/users/d', { x: 1 })),
    ]);
    expect(later.map((a) => a.timing?.lane)).toEqual(['single', 'single']);
    expect(upstream.calls.slice(1).map((c) => [c.request.method, c.request.path])).toEqual([
      ['GET', '/v1/app/users/c'],
      ['PUT', '/v1/app/users/d'],
    ]);
  });

  it('never collapses identical reads of two credentials: each runs under its own key', async () => {
    const { upstream, submit } = setup();
    const [a, b] = await Promise.all([
      submit(opOf('GET', '/users/same'), 'key-a'),
      submit(opOf('GET', '/users/same'), 'key-b'),
    ]);
    expect(outcome(a)).toEqual(echoed('/users/same', 'key-a'));
    expect(outcome(b)).toEqual(echoed('/users/same', 'key-b'));
    expect(upstream.calls.map((c) => [c.authorization, c.paths]).sort()).toEqual([
      ['key-a', ['/users/same']],
      ['key-b', ['/users/same']],
    ]);
  });

  it('collapses identical reads of one credential and answers each caller the one result', async () => {
    const { upstream, submit } = setup();
    const answers = await Promise.all([1, 2, 3].map(() => submit(opOf('GET', '/users/same'))));
    expect(upstream.calls.map((c) => c.ops.length)).toEqual([1]);
    expect(answers.map(outcome)).toEqual([1, 2, 3].map(() => echoed('/users/same')));
  });

  it('re-sends a single-lane call the upstream answered 429 and gives its caller the result', async () => {
    const { upstream, submit } = setup({
      batchLimit: { ratePerSec: 0.1, burst: 1 },
      restLimit: { ratePerSec: 1000, burst: 100 },
    });
    // The first call takes the only batch token; the next goes on the single lane.
    expect(outcome(await submit(opOf('GET', '/users/a')))).toEqual(echoed('/users/a'));
    upstream.script.push(() => json(429, { error: 'slow down' }, { 'retry-after': '0.05' }));
    const answer = await submit(opOf('GET', '/users/b'));
    expect(outcome(answer)).toEqual({
      status: 200,
      body: { single: true, method: 'GET', path: '/v1/app/users/b', auth: 'key-a' },
    });
    expect(answer.timing).toMatchObject({ lane: 'single', attempts: 1 });
    expect(upstream.calls.map((c) => c.request.path)).toEqual([
      '/v1/app/batch',
      '/v1/app/users/b',
      '/v1/app/users/b',
    ]);
  });

  it.each([
    ['does not let a read that follows a write to its parent join a read from before the write', 1],
    ['collapses the reads that follow a write with each other, not with the read before it', 2],
  ])('%s', async (_title, readsAfter) => {
    const { upstream, submit } = setup();
    const read = () => submit(opOf('GET', '/conversations/c1/messages'));
    const after = Array.from({ length: readsAfter }, () => '/conversations/c1/messages');
    const answers = await Promise.all([
      read(),
      submit(opOf('DELETE', '/conversations/c1')),
      ...after.map(read),
    ]);
    expect(upstream.calls.map((c) => c.ops.map((o) => [o.method, o.path]))).toEqual([
      [['GET', '/conversations/c1/messages']],
      [['DELETE', '/conversations/c1']],
      [['GET', '/conversations/c1/messages']],
    ]);
    expect(answers.map(outcome)).toEqual([
      echoed('/conversations/c1/messages'),
      echoed('/conversations/c1', 'key-a', 'DELETE'),
      ...after.map((path) => echoed(path)),
    ]);
  });

  it('puts an op the upstream answered 429 back ahead of ops that arrived after it', async () => {
    const { upstream, submit } = setup({ maxOps: 1, batchLimit: { ratePerSec: 1000, burst: 1 } });
    upstream.holding = true;
    upstream.script.push(() => json(429, {}, { 'retry-after': '0.05' }));
    const a = submit(opOf('GET', '/users/a'));
    await upstream.received(1);
    // A is in flight and holds the only token: B queues behind it.
    const b = submit(opOf('GET', '/users/b'));
    upstream.holding = false;
    upstream.release();
    expect((await Promise.all([a, b])).map(outcome)).toEqual([echoed('/users/a'), echoed('/users/b')]);
    expect(upstream.calls.map((c) => c.paths)).toEqual([['/users/a'], ['/users/a'], ['/users/b']]);
  });

  it('drains: sends what is queued at once and resolves when all is answered', async () => {
    const { scheduler, submit } = setup({ windowMs: 60_000 });
    const pending = submit(opOf('GET', '/users/a'));
    await scheduler.drain();
    expect((await pending).kind).toBe('result');
    expect(scheduler.pending).toBe(0);
  });
});
