// A caller's own deadline (issue #31, `x-batch-max-wait-ms` at the edge): shorter than MAX_WAIT_MS,
// never longer; a queued call and a call that bypasses the queue alike. On a manual clock.

import { describe, expect, it } from 'vitest';
import { fakeTransport } from '../testing/fake-transport.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import type { Answer } from './op.js';
import { Scheduler } from './scheduler.js';

const get = (path: string) =>
  ({ method: 'GET', path, query: {}, body: undefined, apiVersion: undefined }) as const;

/** One batch call a second, one op each; the first token spent: the next batch leaves at 1,000 ms. */
function spentBudget() {
  const clock = new ManualClock(0);
  const upstream = fakeTransport(clock);
  const scheduler = new Scheduler(
    schedulerOptions({
      upstream,
      clock,
      maxWaitMs: 1_500,
      windowMs: 0,
      // One op a batch call: each op spends its own token.
      maxOps: 1,
      batchLimit: { ratePerSec: 1, burst: 1 },
    }),
  );
  return { clock, upstream, scheduler };
}

/** Resolves to [answer, the clock's time when it came]. */
function timed(clock: ManualClock, answer: Promise<Answer>): { at?: number; answer?: Answer } {
  const seen: { at?: number; answer?: Answer } = {};
  void answer.then((a) => {
    seen.at = clock.now();
    seen.answer = a;
  });
  return seen;
}

describe("a caller's own deadline", () => {
  it('answers 503 by its own deadline while a caller without one waits for the budget', async () => {
    const { clock, upstream, scheduler } = spentBudget();
    const first = timed(clock, scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') }));
    await clock.advance(1);
    expect(upstream.calls).toHaveLength(1);
    const hurried = timed(
      clock,
      scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/2'), maxWaitMs: 200 }),
    );
    const patient = timed(clock, scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/3') }));
    await clock.advance(1_500);
    expect(first.answer).toMatchObject({ kind: 'result', status: 200 });
    expect(hurried.answer).toMatchObject({ kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
    // It cannot leave before 1,000 ms, past its deadline (201 ms): answered at once, not at 201.
    expect(hurried.at).toBeLessThanOrEqual(201);
    expect(patient.answer).toMatchObject({ kind: 'result', status: 200 });
    expect(upstream.calls.map((c) => c.paths)).toEqual([['/users/1'], ['/users/3']]);
  });

  it('is answered at its deadline, to the millisecond, when what it waits behind outlasts it', async () => {
    const clock = new ManualClock(0);
    const upstream = fakeTransport(clock);
    const scheduler = new Scheduler(schedulerOptions({ upstream, clock, maxWaitMs: 1_500, windowMs: 0 }));
    // A write in flight, held by the upstream: a read of its resource waits behind it (SPEC §5).
    upstream.holding = true;
    void scheduler.submit({
      appId: 'a',
      credential: 'k',
      op: { method: 'POST', path: '/users/1', query: {}, body: '{}', apiVersion: undefined },
    });
    await clock.advance(1);
    const behind = timed(
      clock,
      scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1'), maxWaitMs: 200 }),
    );
    for (let t = 0; t < 300; t += 1) await clock.advance(1);
    expect(behind.answer).toMatchObject({ kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
    expect(behind.at).toBeGreaterThanOrEqual(201);
    expect(behind.at).toBeLessThanOrEqual(211);
    upstream.release();
  });

  it('is answered at its deadline when it waits behind an older op with a longer one', async () => {
    const clock = new ManualClock(0);
    const upstream = fakeTransport(clock);
    const scheduler = new Scheduler(schedulerOptions({ upstream, clock, maxWaitMs: 1_500, windowMs: 0 }));
    upstream.holding = true;
    void scheduler.submit({
      appId: 'a',
      credential: 'k',
      op: { method: 'POST', path: '/users/1', query: {}, body: '{}', apiVersion: undefined },
    });
    await clock.advance(1);
    // Both wait for the write; the older one may wait 1,500 ms, the newer one only 200.
    const patient = timed(clock, scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') }));
    const hurried = timed(
      clock,
      scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1/messages'), maxWaitMs: 200 }),
    );
    for (let t = 0; t < 300; t += 1) await clock.advance(1);
    expect(hurried.answer).toMatchObject({ kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
    expect(hurried.at).toBeGreaterThanOrEqual(201);
    expect(hurried.at).toBeLessThanOrEqual(211);
    expect(patient.answer).toBeUndefined();
    upstream.holding = false;
    upstream.release();
    await clock.advance(10);
    expect(patient.answer).toMatchObject({ kind: 'result', status: 200 });
  });

  it('is answered by its deadline when the budget reopens just after it, not before it is due', async () => {
    const { clock, scheduler } = spentBudget();
    void scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') });
    await clock.advance(1);
    // Due at 1,001: the budget reopens at 1,000, so it is sent.
    const inTime = timed(
      clock,
      scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/2'), maxWaitMs: 1_000 }),
    );
    await clock.advance(2_000);
    expect(inTime.answer).toMatchObject({ kind: 'result', status: 200 });
  });

  it('never waits longer than MAX_WAIT_MS, whatever the caller asks', async () => {
    const { clock, upstream, scheduler } = spentBudget();
    void scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') });
    await clock.advance(1);
    // One ahead of it: it would leave at 2,000 ms, past MAX_WAIT_MS (1,500) from now.
    void scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/2') });
    const greedy = timed(
      clock,
      scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/3'), maxWaitMs: 60_000 }),
    );
    await clock.advance(5_000);
    expect(greedy.answer).toMatchObject({ kind: 'error', error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
    expect(greedy.at).toBeLessThanOrEqual(1_501);
    expect(upstream.calls.map((c) => c.paths)).toEqual([['/users/1'], ['/users/2']]);
  });

  it('never collapses a hurried read with another: each would wait by the other deadline', async () => {
    const clock = new ManualClock(0);
    const upstream = fakeTransport(clock);
    const scheduler = new Scheduler(schedulerOptions({ upstream, clock, maxWaitMs: 1_500, windowMs: 5 }));
    const first = timed(clock, scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') }));
    const hurried = timed(
      clock,
      scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1'), maxWaitMs: 1_000 }),
    );
    // Joins the first: the same deadline rules them both.
    const third = timed(clock, scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') }));
    await clock.advance(10);
    expect(upstream.calls.map((c) => c.paths)).toEqual([['/users/1', '/users/1']]);
    for (const seen of [first, hurried, third])
      expect(seen.answer).toMatchObject({ kind: 'result', status: 200 });
  });

  it('holds for a call that bypasses the queue', async () => {
    const { clock, scheduler } = spentBudget();
    void scheduler.submit({ appId: 'a', credential: 'k', op: get('/users/1') });
    await clock.advance(1);
    let outcome: unknown;
    let at: number | undefined;
    void scheduler.admit('a', 'batch', undefined, undefined, 300).then((o) => {
      outcome = o;
      at = clock.now();
    });
    await clock.advance(2_000);
    expect(outcome).toMatchObject({ code: 'PROXY_DEADLINE_EXCEEDED' });
    expect(at).toBeLessThanOrEqual(301);
  });
});
