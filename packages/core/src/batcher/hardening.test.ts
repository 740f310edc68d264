// Engine hardening (issue #15) on a manual clock: a circuit breaker per app, a whole-batch 4xx that
// fails only the op that caused it, a bound on a batch's payload, an op that cannot leave before its
// deadline answered at once, and per-app state freed when idle.

import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { opOf, statusOf } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import type { Answer } from './op.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

function setup(overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock();
  // Every call takes 10 ms; each op is answered 200 with its sequence number unless `respond` answers
  // the whole call.
  const upstream = fakeTransport(clock);
  upstream.latencyMs = 10;
  upstream.answerOp = (o) => ({ status: 200, body: { seq: o.id } });
  const limiter = new MemoryLimiter({ now: () => clock.now() });
  const scheduler = new Scheduler(
    schedulerOptions({ limiter, upstream, batchLimit: { ratePerSec: 100, burst: 100 }, clock, ...overrides }),
  );
  const submit = (op: OpRequest, appId = 'app') => scheduler.submit({ appId, credential: 'k', op });
  return { clock, upstream, scheduler, submit, limiter };
}

describe('circuit breaker', () => {
  it('opens after consecutive upstream failures: calls are answered 503 at once, then a probe closes it', async () => {
    const { clock, upstream, scheduler, submit } = setup({
      breakerFailures: 3,
      breakerOpenMs: 2_000,
    });
    upstream.respond = () => ({ status: 503, headers: {}, body: '{}' });
    for (let i = 0; i < 3; i++) {
      const failed = submit(opOf('PUT', `/users/u${i}`));
      await clock.advance(20);
      expect(statusOf(await failed)).toBe(502);
    }
    expect(scheduler.snapshot()).toMatchObject([{ appId: 'app', circuit: 'open' }]);
    const refused = await submit(opOf('PUT', '/users/x'));
    expect(refused).toMatchObject({ kind: 'error', error: { code: 'PROXY_CIRCUIT_OPEN', status: 503 } });
    expect(refused.kind === 'error' && refused.error.retryAfterSec).toBe(2);
    expect(upstream.calls).toHaveLength(3);
    // After the open period one call goes through; its success closes the breaker.
    await clock.advance(2_000);
    upstream.respond = () => undefined;
    const probe = submit(opOf('PUT', '/users/p'));
    await clock.advance(20);
    expect(statusOf(await probe)).toBe(200);
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'closed' }]);
  });

  /** Opens the app's breaker: `failures` calls in a row answered 503, each sent after the last came back. */
  async function open(env: ReturnType<typeof setup>, failures: number) {
    const respond = env.upstream.respond;
    env.upstream.respond = () => ({ status: 503, headers: {}, body: '{}' });
    for (let i = 0; i < failures; i++) {
      const failed = env.submit(opOf('PUT', `/users/fail${i}`));
      await env.clock.advance(20);
      expect(statusOf(await failed)).toBe(502);
    }
    env.upstream.respond = respond;
    expect(env.scheduler.snapshot()).toMatchObject([{ circuit: 'open' }]);
  }

  it('lets one probe out when half-open; the calls behind it leave once its success closes the breaker', async () => {
    const env = setup({ breakerFailures: 2, breakerOpenMs: 1_000, maxOps: 1 });
    const { clock, upstream, scheduler, submit } = env;
    await open(env, 2);
    await clock.advance(1_000);
    const answers = ['p', 'q', 'r'].map((u) => submit(opOf('PUT', `/users/${u}`)));
    // Three full batches, and tokens for all: only the probe is out (the upstream takes 10 ms).
    await clock.advance(5);
    expect(upstream.calls.map((c) => c.paths)).toEqual([['/users/fail0'], ['/users/fail1'], ['/users/p']]);
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'half-open' }]);
    await clock.advance(30);
    expect((await Promise.all(answers)).map(statusOf)).toEqual([200, 200, 200]);
    expect(upstream.calls).toHaveLength(5);
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'closed' }]);
  });

  it('lets one probe out when half-open; its failure opens the breaker again and answers the rest 503', async () => {
    const env = setup({ breakerFailures: 2, breakerOpenMs: 1_000, maxOps: 1 });
    const { clock, upstream, scheduler, submit } = env;
    await open(env, 2);
    await clock.advance(1_000);
    upstream.respond = () => ({ status: 503, headers: {}, body: '{}' });
    const answers = ['p', 'q', 'r'].map((u) => submit(opOf('PUT', `/users/${u}`)));
    await clock.advance(30);
    const [probe, ...rest] = await Promise.all(answers);
    expect(probe && statusOf(probe)).toBe(502);
    for (const a of rest) expect(a).toMatchObject({ kind: 'error', error: { code: 'PROXY_CIRCUIT_OPEN' } });
    expect(upstream.calls).toHaveLength(3);
    // Open again, for twice as long.
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'open' }]);
    const refused = await submit(opOf('PUT', '/users/s'));
    expect(refused.kind === 'error' && refused.error.retryAfterSec).toBe(2);
  });

  it('counts calls in flight together that fail on one hiccup as one failure; failures across rounds open it', async () => {
    const { clock, upstream, scheduler, submit } = setup({ breakerFailures: 2, maxOps: 1 });
    upstream.respond = () => ({ status: 503, headers: {}, body: '{}' });
    // Four batches out together (sent at one instant), all answered 503 together: one failure.
    const together = ['a', 'b', 'c', 'd'].map((u) => submit(opOf('PUT', `/users/${u}`)));
    await clock.advance(20);
    expect((await Promise.all(together)).map(statusOf)).toEqual([502, 502, 502, 502]);
    expect(upstream.calls.map((c) => c.at)).toEqual([0, 0, 0, 0]);
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'closed' }]);
    // A call sent after they came back fails too: the second failure in a row.
    const next = submit(opOf('PUT', '/users/e'));
    await clock.advance(20);
    expect(statusOf(await next)).toBe(502);
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'open' }]);
  });

  it('does not count 4xx answers as failures', async () => {
    const { clock, upstream, scheduler, submit } = setup({ breakerFailures: 2 });
    upstream.answerOp = () => ({ status: 404, body: {} });
    for (let i = 0; i < 4; i++) {
      const a = submit(opOf('PUT', `/users/u${i}`));
      await clock.advance(20);
      expect(statusOf(await a)).toBe(404);
    }
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'closed' }]);
  });

  it('does not count a whole-call 4xx as a failure: a batch refused (400), unauthorised (401), a single call 404', async () => {
    const scenarios: Array<[Partial<SchedulerOptions>, number]> = [
      [{}, 400],
      [{}, 401],
      [{ singleOpDirect: true }, 404],
    ];
    for (const [overrides, code] of scenarios) {
      const { clock, upstream, scheduler, submit } = setup({ breakerFailures: 2, ...overrides });
      upstream.respond = () => ({ status: code, headers: {}, body: '{"error":"no"}' });
      // Three in a row, each sent after the last came back.
      for (let i = 0; i < 3; i++) {
        const a = submit(opOf('PUT', `/users/u${i}`));
        await clock.advance(20);
        expect(statusOf(await a), `${code}`).toBe(code);
      }
      expect(scheduler.snapshot(), `${code}`).toMatchObject([{ circuit: 'closed' }]);
    }
  });
});

describe('a whole-batch 4xx', () => {
  it('fails only the op that caused it: the others are sent again in smaller batches', async () => {
    const { clock, upstream, submit } = setup();
    // The upstream refuses any batch carrying the poison op as a whole.
    upstream.respond = (call) =>
      call.paths.includes('/users/poison')
        ? { status: 400, headers: {}, body: '{"error":"bad payload"}' }
        : undefined;
    const paths = ['/users/a', '/users/b', '/users/poison', '/users/c', '/users/d'];
    const answers = paths.map((p) => submit(opOf('PUT', p)));
    await clock.advance(1_000);
    const results = await Promise.all(answers);
    expect(results.map(statusOf)).toEqual([200, 200, 400, 200, 200]);
    const poisoned = results[2];
    expect(poisoned?.kind === 'result' && poisoned.body).toBe('{"error":"bad payload"}');
    // Every good op ran exactly once.
    const ran = upstream.calls.filter((c) => !c.paths.includes('/users/poison')).flatMap((c) => c.paths);
    expect(ran.sort()).toEqual(['/users/a', '/users/b', '/users/c', '/users/d']);
  });

  it('keeps a batch payload under maxBatchBytes', async () => {
    const { clock, upstream, submit } = setup({ maxBatchBytes: 2_500 });
    const big = 'x'.repeat(1_000);
    const answers = [1, 2, 3, 4, 5].map((i) => submit(opOf('PUT', `/users/u${i}`, { big })));
    await clock.advance(1_000);
    expect((await Promise.all(answers)).map(statusOf)).toEqual([200, 200, 200, 200, 200]);
    expect(upstream.calls.map((c) => c.size)).toEqual([2, 2, 1]);
  });
});

describe('an op that cannot leave before its deadline', () => {
  it('is answered 503 at once with the real wait as Retry-After, not held to the deadline', async () => {
    const { clock, upstream, submit } = setup({ maxWaitMs: 30_000 });
    upstream.script.push(() => ({ status: 429, headers: { 'retry-after': '86400' }, body: '{}' }));
    let got: Answer | undefined;
    void submit(opOf('PUT', '/users/a')).then((a) => {
      got = a;
    });
    await clock.advance(20);
    // The pause is capped at 60 s (maxRetryAfterMs), still longer than the op may wait.
    expect(got).toMatchObject({ kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED', status: 503 } });
    expect(got?.kind === 'error' && got.error.retryAfterSec).toBe(60);
    expect(clock.now()).toBe(20);
  });
});

describe('per-app state', () => {
  it('is freed when idle: memory stays flat under waves of distinct appIds', async () => {
    const { clock, scheduler, submit, limiter } = setup({
      batchLimit: { ratePerSec: 10, burst: 5 },
      idleSweepMs: 500,
    });
    const WAVE = 1_500;
    const sizes: Array<[number, number]> = [];
    for (let wave = 0; wave < 5; wave++) {
      const answers = Array.from({ length: WAVE }, (_, i) =>
        submit(opOf('PUT', '/users/u'), `w${wave}-a${i}`),
      );
      await clock.advance(50);
      expect((await Promise.all(answers)).every((a) => statusOf(a) === 200)).toBe(true);
      // Long enough for every bucket to be full again: nothing tells these apps from new ones.
      await clock.advance(1_000);
      sizes.push([scheduler.snapshot().length, limiter.size]);
    }
    // Every app forgotten once idle; the limiter forgets full buckets as it goes (every 1,024 writes),
    // so it holds at most about one wave's buckets, whatever the number of waves.
    for (const [apps, buckets] of sizes) {
      expect(apps).toBe(0);
      expect(buckets).toBeLessThanOrEqual(WAVE + 1_024);
    }
  }, 60_000);
});
