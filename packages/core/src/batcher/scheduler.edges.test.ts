// Edges of the scheduler a careful read once found broken, each pinned by a test that failed on it.
// Time is fake (vitest's timers, `performance.now` included), so every instant below is exact.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { FallbackLimiter } from '../ratelimit/fallback.js';
import { type BucketLimit, bucketKey, type Limiter } from '../ratelimit/limiter.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { opOf } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ResourceIndex } from './resources.js';
import { Scheduler, type SchedulerObserver, type SchedulerOptions } from './scheduler.js';

const now = () => performance.now();

function setup(overrides: Partial<SchedulerOptions> = {}) {
  const upstream = fakeTransport();
  const denials: Array<{ bucket: string; at: number }> = [];
  const observer: SchedulerObserver = {
    onLimiter: (e) => {
      if (!e.granted) denials.push({ bucket: e.bucket, at: now() });
    },
  };
  const options = schedulerOptions({
    limiter: new MemoryLimiter({ now }),
    upstream,
    // No window: an op leaves in the pump that admits it, so every instant below is the op's own.
    windowMs: 0,
    observer,
    ...overrides,
  });
  const scheduler = new Scheduler(options);
  const submit = (o: OpRequest, signal?: AbortSignal) =>
    scheduler.submit({ appId: 'app', credential: 'key', op: o, ...(signal ? { signal } : {}) });
  return { scheduler, upstream, denials, submit, limiter: options.limiter };
}

describe('scheduler edges, on fake time', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a 429 keeps the lane closed for the whole Retry-After (no polling every interval)', async () => {
    const { upstream, denials, submit } = setup({ batchLimit: { ratePerSec: 10, burst: 1 } });
    upstream.script.push(() => ({ status: 429, headers: { 'retry-after': '2' }, body: '{}' }));
    const answer = submit(opOf('GET', '/users/a'));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(upstream.calls).toHaveLength(1);
    expect(denials).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect((await answer).kind).toBe('result');
    expect(upstream.calls.map((c) => c.at)).toEqual([0, 2_000]);
  });

  it('BATCH_OPS_SPEND_REST charges every batched op to the rest bucket, none dropped', async () => {
    const rest: BucketLimit = { ratePerSec: 10, burst: 5 };
    const { limiter, submit } = setup({ restLimit: rest, batchOpsSpendRest: true });
    await Promise.all(Array.from({ length: 10 }, (_, i) => submit(opOf('GET', `/users/u${i}`))));
    // Ten ops on a bucket of five: five tokens and five intervals of debt (the upstream counted ten).
    expect(await limiter.peek(bucketKey('test', 'app', 'rest'), rest)).toEqual({
      tokens: 0,
      cooldownMs: 600,
    });
  });

  it('SINGLE_OP_DIRECT without a rest budget spends batch tokens (it replaces a batch of one)', async () => {
    const { upstream, submit } = setup({ batchLimit: { ratePerSec: 1, burst: 1 }, singleOpDirect: true });
    await submit(opOf('GET', '/users/a'));
    const second = submit(opOf('GET', '/users/b'));
    await vi.advanceTimersByTimeAsync(500);
    expect(upstream.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect((await second).kind).toBe('result');
    expect(upstream.calls.map((c) => [c.at, c.request.path])).toEqual([
      [0, '/v1/app/users/a'],
      [1_000, '/v1/app/users/b'],
    ]);
  });

  it('SINGLE_OP_DIRECT does not ask a rest bucket it knows is empty', async () => {
    const { denials, submit } = setup({ restLimit: { ratePerSec: 0.1, burst: 1 }, singleOpDirect: true });
    const lanes: Array<string | undefined> = [];
    for (const user of ['a', 'b', 'c', 'd']) {
      const answer = submit(opOf('GET', `/users/${user}`));
      await vi.advanceTimersByTimeAsync(10);
      lanes.push((await answer).timing?.lane);
    }
    // The first single call emptied the rest bucket: the others take the batch lane without asking.
    expect(lanes).toEqual(['single', 'batch', 'batch', 'batch']);
    expect(denials).toEqual([]);
  });

  it('a backlog of writes to one resource costs linear conflict checks, not quadratic', async () => {
    vi.useRealTimers();
    const checks = vi.spyOn(ResourceIndex.prototype, 'isBlocked');
    try {
      const { submit } = setup({ windowMs: 0 });
      const n = 1_000;
      await Promise.all(Array.from({ length: n }, () => submit(opOf('POST', '/conversations/c1/messages'))));
      console.log(`conflict checks for ${n} writes to one resource: ${checks.mock.calls.length}`);
      expect(checks.mock.calls.length).toBeLessThan(10 * n);
    } finally {
      checks.mockRestore();
    }
  });

  it.each([
    ['MemoryLimiter', () => new MemoryLimiter({ now })],
    [
      'FallbackLimiter in fallback',
      () =>
        new FallbackLimiter({
          primary: new DeadLimiter(),
          share: 1,
          now,
        }),
    ],
  ])('5: with %s a settle says when the bucket reopens: no poll in between', async (_name, create) => {
    const { upstream, denials, submit } = setup({
      batchLimit: { ratePerSec: 10, burst: 1 },
      limiter: create(),
    });
    upstream.latencyMs = 150;
    const first = submit(opOf('GET', '/users/a'));
    await vi.advanceTimersByTimeAsync(10);
    const second = submit(opOf('GET', '/users/b'));
    await vi.advanceTimersByTimeAsync(400);
    await Promise.all([first, second]);
    // Granted at 0 and answered at 150: the next grant is one interval after the answer, found
    // with at most the one look taken while the first call was still out (its lease held the bucket).
    expect(upstream.calls.map((c) => c.at)).toEqual([0, 250]);
    expect(denials.filter((d) => d.at > 100)).toEqual([]);
  });

  it('an upstream call carries a signal that ends it at shutdown (abandon)', async () => {
    const { upstream, scheduler, submit } = setup();
    upstream.latencyMs = 60_000;
    const answer = submit(opOf('GET', '/users/a'));
    await vi.advanceTimersByTimeAsync(1);
    const signal = upstream.calls[0]?.signal;
    expect(signal?.aborted).toBe(false);
    scheduler.abandon(new ProxyError('PROXY_DRAINING', 'shutting down'));
    expect(signal?.aborted).toBe(true);
    expect(await answer).toMatchObject({ kind: 'error', error: { code: 'PROXY_DRAINING' } });
  });

  it('admit stops waiting when its caller goes away', async () => {
    const { scheduler } = setup({ restLimit: { ratePerSec: 0.1, burst: 1 } });
    const release = await scheduler.admit('app', 'rest');
    expect(typeof release).toBe('function');
    const gone = new AbortController();
    let outcome: unknown;
    void scheduler.admit('app', 'rest', gone.signal).then((o) => {
      outcome = o;
    });
    await vi.advanceTimersByTimeAsync(10);
    gone.abort();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toMatchObject({ code: 'PROXY_CLIENT_CLOSED' });
  });
});

/** A shared limiter that is down: every call fails, so FallbackLimiter serves from memory. */
class DeadLimiter implements Limiter {
  acquire(): never {
    throw new Error('connection refused');
  }
  settle(): Promise<never> {
    return Promise.reject(new Error('connection refused'));
  }
  pause(): Promise<never> {
    return Promise.reject(new Error('connection refused'));
  }
  peek(): Promise<never> {
    return Promise.reject(new Error('connection refused'));
  }
  charge(): Promise<never> {
    return Promise.reject(new Error('connection refused'));
  }
  onReopen(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}
