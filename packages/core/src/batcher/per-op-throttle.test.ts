// Per-op throttling (docs/graph-dialect.md §2.6): a 429 inside a 200 batch puts back only that op, at
// the front of its queue and without spending its retry budget (it never ran), pauses the bucket by
// the longest Retry-After through `limiter.pause`, and lets every other answer go out at once. On a
// manual clock: every upstream call is expected at an exact instant.

import { describe, expect, it } from 'vitest';
import { graph } from '../dialect/graph.js';
import type { BucketLimit, Limiter } from '../ratelimit/limiter.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport, graphWire } from '../testing/fake-transport.js';
import { graphOp } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import type { Answer } from './op.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

/** The limiter's pause calls, as the adaptive pacer will hear them. */
function pauses(inner: Limiter): { limiter: Limiter; heard: number[] } {
  const heard: number[] = [];
  const limiter: Limiter = {
    acquire: (...args) => inner.acquire(...args),
    settle: (...args) => inner.settle(...args),
    charge: (...args) => inner.charge(...args),
    peek: (...args) => inner.peek(...args),
    close: () => inner.close(),
    pause: (key: string, limit: BucketLimit, ms: number) => {
      heard.push(ms);
      return inner.pause(key, limit, ms);
    },
  };
  return { limiter, heard };
}

function engine(overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock(1_000);
  // Graph-shaped: `answerOp` answers each request of a batch (default 200), in reverse order (Graph's
  // come back in any order).
  const upstream = fakeTransport(clock, { wire: graphWire });
  upstream.order = (ops) => [...ops].reverse();
  const { limiter, heard } = pauses(new MemoryLimiter({ now: () => clock.now() }));
  const scheduler = new Scheduler(
    schedulerOptions({
      dialect: graph,
      upstream,
      limiter,
      clock,
      windowMs: 5,
      maxOps: 20,
      maxWaitMs: 60_000,
      batchLimit: { ratePerSec: 100, burst: 100 },
      ...overrides,
    }),
  );
  const answered = new Map<string, { at: number; answer: Answer }>();
  const submit = (path: string, credential = 'Bearer a') => {
    const p = scheduler.submit({ appId: 'v1.0', credential, op: graphOp('GET', path) });
    void p.then((answer) => answered.set(path, { at: clock.now() - base, answer }));
    return p;
  };
  /** Where instants count from: the start, or the end of `accept`. */
  let base = 1_000;
  const instants = () => upstream.calls.map((c) => c.at - base);
  /**
   * The upstream accepts each credential once (a call of its own answered 200), and the record
   * starts again (instants count from here): a credential spends its own budget until then (SPEC
   * §8d, scopes.ts), the app's after.
   */
  const accept = async (...credentials: string[]) => {
    await Promise.all([
      ...credentials.map((credential) =>
        scheduler.submit({ appId: 'v1.0', credential, op: graphOp('GET', '/organization') }),
      ),
      clock.advance(1_000),
    ]);
    upstream.calls.length = 0;
    base = clock.now();
  };
  return { clock, upstream, scheduler, submit, instants, answered, heard, accept };
}

describe('per-op throttling inside a 200 batch', () => {
  it('answers the others at once, re-sends only the throttled ops after the longest Retry-After', async () => {
    const { clock, upstream, submit, instants, answered, heard } = engine();
    upstream.answerOp = ({ path: url }, { index: call }) => {
      if (call === 0 && url === '/users/b') return { status: 429, headers: { 'Retry-After': '1' } };
      if (call === 0 && url === '/users/d') return { status: 429, headers: { 'Retry-After': '3' } };
      return { status: 200, headers: { ETag: `W/"${url}"` }, body: { url } };
    };
    const all = ['a', 'b', 'c', 'd'].map((u) => submit(`/users/${u}`));
    await clock.advance(5);
    expect(instants()).toEqual([5]);
    // a and c are answered by the first call, with their own headers and bodies.
    expect(answered.get('/users/a')).toMatchObject({
      at: 5,
      answer: { kind: 'result', status: 200, body: '{"url":"/users/a"}', headers: { etag: 'W/"/users/a"' } },
    });
    expect(answered.get('/users/c')).toMatchObject({ at: 5, answer: { status: 200 } });
    expect(answered.has('/users/b')).toBe(false);
    // Graph throttles per user (SPEC §8d): the group (this token) pauses by the longest Retry-After
    // (3 s); the app's bucket, which every other token shares, does not.
    expect(heard).toEqual([]);
    await clock.advance(2_999);
    expect(instants()).toEqual([5]);
    await clock.advance(1);
    expect(instants()).toEqual([5, 3_005]);
    expect(upstream.calls[1]?.paths).toEqual(['/users/b', '/users/d']);
    await Promise.all(all);
    // Never executed, so the 429 did not count: one attempt each.
    expect(answered.get('/users/b')).toMatchObject({
      at: 3_005,
      answer: { kind: 'result', status: 200, timing: { attempts: 1 } },
    });
    expect(answered.get('/users/d')?.answer).toMatchObject({ kind: 'result', timing: { attempts: 1 } });
  });

  it('pauses only the throttled token: another token of the app is sent during the pause', async () => {
    const { clock, upstream, submit, instants, answered, heard } = engine();
    upstream.answerOp = ({ path: url }, { index: call }) =>
      call === 0 && url === '/users/a' ? { status: 429, headers: { 'Retry-After': '3' } } : { status: 200 };
    const first = submit('/users/a', 'Bearer a');
    await clock.advance(5);
    expect(instants()).toEqual([5]);
    // During a's pause: b's call leaves after its own window, a's waits out its Retry-After.
    const other = submit('/users/x', 'Bearer b');
    await clock.advance(10);
    expect(instants()).toEqual([5, 10]);
    expect(upstream.calls[1]?.paths).toEqual(['/users/x']);
    await other;
    expect(answered.get('/users/x')).toMatchObject({ at: 10, answer: { status: 200 } });
    await clock.advance(3_000);
    await first;
    expect(instants()).toEqual([5, 10, 3_005]);
    expect(heard).toEqual([]);
  });

  it('pauses the app’s bucket at once when Graph names a scope wider than the user (x-ms-throttle-scope)', async () => {
    for (const [scope, wide] of [
      ['Tenant_Application/ReadWrite/app-id/tenant-id', true],
      ['Application/Read/app-id', true],
      ['Mailbox/Application/app-id/mailbox-id', false],
      ['User/ReadWrite/app-id/user-id', false],
    ] as const) {
      const { clock, upstream, submit, instants, heard, accept } = engine();
      // b spends the app's budget (a token never accepted would spend its own).
      await accept('Bearer b');
      upstream.answerOp = ({ path: url }, { index: call }) =>
        call === 0 && url === '/users/a'
          ? { status: 429, headers: { 'Retry-After': '3', 'x-ms-throttle-scope': scope } }
          : { status: 200 };
      const first = submit('/users/a', 'Bearer a');
      await clock.advance(5);
      const other = submit('/users/x', 'Bearer b');
      await clock.advance(10);
      // As wide as the app: every token waits (the fleet hears the pause); a user's: only that one.
      expect([scope, heard, instants()]).toEqual(wide ? [scope, [3_000], [5]] : [scope, [], [5, 10]]);
      await clock.advance(3_100);
      await Promise.all([first, other]);
    }
  });

  it('reads a single call’s x-ms-throttle-scope too: a tenant-wide 429 pauses the app’s bucket', async () => {
    const { clock, upstream, submit, heard } = engine({ singleOpDirect: true });
    upstream.script.push(() => ({
      status: 429,
      headers: { 'retry-after': '2', 'x-ms-throttle-scope': 'Tenant/ReadWrite/app-id/tenant-id' },
      body: '{}',
    }));
    const first = submit('/users/a', 'Bearer a');
    await clock.advance(5);
    expect(heard).toEqual([2_000]);
    await clock.advance(2_100);
    await first;
  });

  it('holds a pass-through call of the throttled token until its pause ends; other tokens pass at once', async () => {
    const { clock, upstream, scheduler, submit } = engine({ maxWaitMs: 2_000 });
    upstream.answerOp = ({ path: url }, { index: call }) =>
      call === 0 && url === '/users/a' ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 };
    const first = submit('/users/a', 'Bearer a');
    await clock.advance(5);
    let admitted = false;
    void scheduler.admit('v1.0', 'rest', undefined, 'Bearer a').then((r) => {
      admitted = typeof r === 'function';
    });
    expect(typeof (await scheduler.admit('v1.0', 'rest', undefined, 'Bearer b'))).toBe('function');
    await clock.advance(999);
    expect(admitted).toBe(false);
    // At 1,005 the pause ends: the pass-through call goes then, or one group pace (the 429's 1 s)
    // after the throttled op if that one left first at the same instant.
    await clock.advance(1_001);
    expect(admitted).toBe(true);
    await first;
  });

  it('answers at once a call of a throttled token due before its pause ends, while every lane is closed', async () => {
    // One batch call per 20 s: after the first, the bucket stays closed for 20 s.
    const { clock, upstream, submit, answered } = engine({
      maxWaitMs: 30_000,
      batchLimit: { ratePerSec: 0.05, burst: 1 },
    });
    upstream.answerOp = ({ path: url }, { index: call }) =>
      call === 0 && url === '/users/a0' ? { status: 429, headers: { 'Retry-After': '40' } } : { status: 200 };
    void submit('/users/a0');
    await clock.advance(5);
    // a's group is paused 40 s, past this call's 30 s deadline: 503 now, not when the lanes reopen.
    void submit('/users/a1');
    await clock.advance(10);
    expect(answered.get('/users/a1')).toMatchObject({
      at: 5,
      answer: { kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED' } },
    });
    await clock.advance(60_000);
  });

  it('answers a pass-through call of the throttled token 503 when the pause outlasts its deadline', async () => {
    const { clock, upstream, scheduler, submit } = engine({ maxWaitMs: 2_000 });
    upstream.answerOp = ({ path: url }, { index: call }) =>
      call === 0 && url === '/users/a' ? { status: 429, headers: { 'Retry-After': '5' } } : { status: 200 };
    const first = submit('/users/a', 'Bearer a');
    await clock.advance(5);
    const refused = await scheduler.admit('v1.0', 'rest', undefined, 'Bearer a');
    expect(refused).toMatchObject({ code: 'PROXY_DEADLINE_EXCEEDED', retryAfterSec: 5 });
    await clock.advance(5_000);
    await first;
  });

  it('paces the throttled token on its own after its pause: its calls spaced, the pace shrinking', async () => {
    const { clock, upstream, submit, instants, heard } = engine();
    upstream.answerOp = ({ path: url }, { index: call }) =>
      call === 0 && url === '/users/a0' ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 };
    const first = submit('/users/a0');
    await clock.advance(5);
    const other = submit('/users/x', 'Bearer b');
    await clock.advance(1_000);
    // b was not held (10); a's op went again at the pause's end (1,005), its answer usable: the pace
    // (the 429's own 1 s) shrinks to 800 ms.
    expect(instants()).toEqual([5, 10, 1_005]);
    await Promise.all([first, other]);
    const a2 = submit('/users/a2');
    await clock.advance(1_000);
    await a2;
    const a3 = submit('/users/a3');
    await clock.advance(1_000);
    await a3;
    // a2 waits out 800 ms from 1,005; a3 640 ms from a2's call. The app's bucket never paused.
    expect(instants()).toEqual([5, 10, 1_005, 1_805, 2_445]);
    expect(heard).toEqual([]);
    // Another token meanwhile: never spaced.
    const b2 = submit('/users/y', 'Bearer b');
    await clock.advance(5);
    await b2;
    expect(instants().at(-1)).toBe(3_010);
  });

  it('pauses the app’s bucket when three tokens are throttled together (the app is, not its users)', async () => {
    const { clock, upstream, submit, instants, heard, accept } = engine();
    await accept('Bearer z');
    upstream.answerOp = (_op, { index: call }) =>
      call < 3 ? { status: 429, headers: { 'Retry-After': '2' } } : { status: 200 };
    const calls = ['a', 'b', 'c'].map((t) => submit(`/users/${t}`, `Bearer ${t}`));
    await clock.advance(5);
    expect(instants()).toEqual([5, 5, 5]);
    // The third group's pause makes it the app's: its bucket pauses too, as the fleet hears it.
    expect(heard).toEqual([2_000]);
    const late = submit('/users/z', 'Bearer z');
    await clock.advance(1_000);
    expect(instants()).toEqual([5, 5, 5]);
    await clock.advance(1_000);
    expect(instants()).toEqual([5, 5, 5, 2_005]);
    // The paused bucket reopens one interval at a time (limiter.pause spends its burst).
    await clock.advance(30);
    await Promise.all([...calls, late]);
    expect(instants()).toEqual([5, 5, 5, 2_005, 2_015, 2_025, 2_035]);
  });

  it('keeps the retry budget of a throttled op for a real failure afterwards', async () => {
    // Two attempts: a per-op 429, then a 503 on the whole call, then success. Had the 429 spent an
    // attempt, the 503 would be the op's answer.
    const { clock, upstream, submit, instants } = engine({ maxAttempts: 2, random: () => 0.5 });
    upstream.answerOp = (_op, { index: call }) =>
      call === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200, body: {} };
    // The first call is answered per op (the per-op 429); the second is a whole-call 503.
    upstream.respond = (c) => (c.index === 1 ? { status: 503, headers: {}, body: '{}' } : undefined);
    const answer = submit('/users/a');
    await clock.advance(5_000);
    expect(await answer).toMatchObject({ kind: 'result', status: 200, timing: { attempts: 2 } });
    expect(instants()).toHaveLength(3);
  });

  it('re-queues a throttled op ahead of later arrivals of its group', async () => {
    const { clock, upstream, submit } = engine({ maxOps: 2 });
    upstream.answerOp = ({ path: url }, { index: call }) =>
      call === 0 && url === '/users/a'
        ? { status: 429, headers: { 'Retry-After': '1' } }
        : { status: 200, body: {} };
    void submit('/users/a');
    void submit('/users/b');
    await clock.advance(5);
    void submit('/users/c');
    void submit('/users/d');
    await clock.advance(2_000);
    expect(upstream.calls.map((c) => c.paths)).toEqual([
      ['/users/a', '/users/b'],
      ['/users/a', '/users/c'],
      ['/users/d'],
    ]);
  });

  it('answers a throttled op 503 when its deadline leaves no room for the pause', async () => {
    const { clock, upstream, submit, answered } = engine({ maxWaitMs: 2_000 });
    upstream.answerOp = () => ({ status: 429, headers: { 'Retry-After': '10' } });
    const answer = submit('/users/a');
    await clock.advance(5);
    expect(await answer).toMatchObject({ kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
    expect(answered.get('/users/a')?.at).toBe(5);
    expect(upstream.calls).toHaveLength(1);
  });
});
