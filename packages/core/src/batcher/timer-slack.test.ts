// The window against Node's timers: they count on libuv's loop clock (whole milliseconds), so a timer
// set for a window's end fires up to a millisecond before it by performance.now(). The engine counts
// the window as over when the timer set for its end fires — within the clock's declared slack only —
// and never lets that slack touch tokens or deadlines.

import { describe, expect, it } from 'vitest';
import type { BucketLimit } from '../ratelimit/limiter.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { getOp, opOf } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { type Clock, ManualClock, type Timer } from './clock.js';
import { Scheduler } from './scheduler.js';

/**
 * Node's timers on a manual clock: a timer set at `t` for `ms` fires when the whole-millisecond loop
 * clock reaches floor(t) + ceil(ms), at least 1 ms on (node makes a 0 ms timer 1 ms) — up to 1 ms
 * early by the fine clock. The next timer set for `stale.forMs` fires `stale.byMs` earlier still (set
 * in a loop turn that read its clock that long before); with `earlyBy`, every timer longer than 1 ms
 * fires that much earlier.
 */
class LoopClock implements Clock {
  readonly manual = new ManualClock(1_000);
  readonly timerSlackMs: number;
  fired = 0;

  stale: { forMs: number; byMs: number } | undefined;
  earlyBy = 0;

  constructor(slackMs: number) {
    this.timerSlackMs = slackMs;
  }

  now(): number {
    return this.manual.now();
  }

  epochMs(): number {
    return this.manual.epochMs();
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const now = this.manual.now();
    let at = Math.floor(now) + Math.max(1, Math.ceil(ms)) - (ms > 1 ? this.earlyBy : 0);
    if (this.stale?.forMs === ms) {
      at -= this.stale.byMs;
      this.stale = undefined;
    }
    return this.manual.setTimeout(
      () => {
        this.fired++;
        fn();
      },
      Math.max(0, at - now),
    );
  }
}

function engine(
  clock: LoopClock,
  windowMs: number,
  batchLimit: BucketLimit = { ratePerSec: 1_000, burst: 1_000 },
  maxWaitMs = 60_000,
) {
  const upstream = fakeTransport(clock);
  const scheduler = new Scheduler(schedulerOptions({ upstream, windowMs, maxWaitMs, batchLimit, clock }));
  const submit = (path: string, op = getOp(path)) => scheduler.submit({ appId: 'app', credential: 'k', op });
  /** Each call's instant and size. */
  const sent = () => upstream.calls.map(({ at, size }) => ({ at, size }));
  return { upstream, submit, sent };
}

describe('the window on a millisecond timer', () => {
  it('sends when the timer set for the window fires, even a little early by the fine clock', async () => {
    const clock = new LoopClock(1);
    const { upstream, submit } = engine(clock, 2);
    await clock.manual.advance(0.9);
    const answer = submit('/users/a');
    // Window ends at 1002.9; the loop clock's timer fires at 1002 (floor(1000.9) + 2).
    await clock.manual.advance(1.1);
    expect(upstream.calls.map((c) => c.at)).toEqual([1_002]);
    expect((await answer).kind).toBe('result');
    expect(clock.fired).toBe(1);
  });

  it('without slack, waits for a second timer (what a clock that never fires early needs)', async () => {
    const clock = new LoopClock(0);
    const { upstream, submit } = engine(clock, 2);
    await clock.manual.advance(0.9);
    void submit('/users/a');
    await clock.manual.advance(1.1);
    expect(upstream.calls).toEqual([]);
    await clock.manual.advance(1);
    expect(upstream.calls.map((c) => c.at)).toEqual([1_003]);
    expect(clock.fired).toBe(2);
  });

  it('takes no more than the declared slack: a timer 5 ms early does not end a window 5 ms early', async () => {
    const clock = new LoopClock(1);
    const { upstream, submit } = engine(clock, 20);
    await clock.manual.advance(0.5);
    clock.stale = { forMs: 20, byMs: 5 };
    void submit('/users/a');
    // Window ends at 1020.5; the first timer fires at 1015 — too early to count — and the next one,
    // set then for the 5.5 ms left, at 1015 + 6.
    await clock.manual.advance(30);
    expect(upstream.calls.map((c) => c.at)).toEqual([1_021]);
    expect(clock.fired).toBe(2);
    expect(clock.stale).toBeUndefined();
  });

  it('never spends a token early: pacing stays on the fine clock', async () => {
    // One batch per 100 ms; the second window ends before the token is back, so the token decides.
    const clock = new LoopClock(1);
    const { upstream, submit } = engine(clock, 2, { ratePerSec: 10, burst: 1 });
    await clock.manual.advance(0.9);
    void submit('/users/a');
    await clock.manual.advance(10);
    await clock.manual.advance(0.4);
    void submit('/users/b');
    await clock.manual.advance(300);
    const [first, second] = upstream.calls.map((c) => c.at);
    expect(first).toBe(1_002);
    // The bucket refills one interval after the first grant (or its answer, which lands at once).
    expect(second).toBeGreaterThanOrEqual(1_102);
  });
  it('judges the window on now() in a pass no timer woke (an arrival)', async () => {
    const clock = new LoopClock(1);
    const { upstream, submit, sent } = engine(clock, 2);
    // Window ends at 1002.0; its timer, set at a whole millisecond, fires on time.
    void submit('/users/a');
    await clock.manual.advance(1.5);
    // The arrival's pass at 1001.5 is within the slack of the window's end, but no timer woke it.
    void submit('/users/b');
    await clock.manual.advance(0);
    expect(upstream.calls).toEqual([]);
    await clock.manual.advance(1);
    expect(sent()).toEqual([{ at: 1_002, size: 2 }]);
  });

  it('never expires an op before its deadline when the deadline timer fires early', async () => {
    const clock = new LoopClock(1);
    const { submit } = engine(clock, 2, { ratePerSec: 10, burst: 1 }, 50);
    void submit('/users/a');
    await clock.manual.advance(10);
    // Every timer from now fires 0.5 ms early; the bucket is empty until 1100, past b's deadline.
    clock.earlyBy = 0.5;
    let answeredAt = 0;
    void submit('/users/b').then(() => {
      answeredAt = clock.now();
    });
    await clock.manual.advance(200);
    expect(answeredAt).toBeGreaterThanOrEqual(1_060);
  });
  it('sends at once, on an answer, an op whose window ended while it waited behind a write', async () => {
    const clock = new LoopClock(1);
    const { upstream, submit, sent } = engine(clock, 2);
    upstream.latencyMs = 5;
    // a leaves at 1002 (its timer) and is answered at 1007; b, a later write to the same user, waits
    // for that answer, its window long over: the answer's pass sends it, no timer needed.
    void submit('/users/a', opOf('PUT', '/users/a'));
    await clock.manual.advance(0.5);
    void submit('/users/a', opOf('PUT', '/users/a'));
    await clock.manual.advance(20);
    expect(sent()).toEqual([
      { at: 1_002, size: 1 },
      { at: 1_007, size: 1 },
    ]);
  });
});
