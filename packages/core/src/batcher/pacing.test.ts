// Pacing, holds, leases, 429 pauses and the two-lane economy (SPEC §7, §7b) on a manual clock: every
// upstream call is expected at an exact instant.

import { describe, expect, it } from 'vitest';
import type { BucketLimit, Decision, Limiter } from '../ratelimit/limiter.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { getOp } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { type Clock, ManualClock } from './clock.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

function engine(batchLimit: BucketLimit, overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock(1_000);
  const upstream = fakeTransport(clock);
  const scheduler = new Scheduler(
    schedulerOptions({ upstream, windowMs: 0, maxWaitMs: 60_000, batchLimit, clock, ...overrides }),
  );
  const submit = (path: string, credential = 'k') =>
    scheduler.submit({ appId: 'app', credential, op: getOp(path) });
  /** Call instants relative to the start. */
  const instants = () => upstream.calls.map((c) => c.at - 1_000);
  return { clock, upstream, scheduler, submit, instants };
}

describe('pacing on a manual clock', () => {
  it('spaces grants one interval from the previous answer at burst 1 (SPEC §7)', async () => {
    const { clock, upstream, submit, instants } = engine({ ratePerSec: 10, burst: 1 });
    upstream.latencyMs = 30;
    const answers = [submit('/users/a'), submit('/users/b'), submit('/users/c')].map((p) =>
      p.then((a) => a.kind),
    );
    // The first op leaves alone at once (no window); the bucket is then empty until one interval
    // after its answer (30 + 100), when the two others leave together.
    await clock.advance(1_000);
    expect(await Promise.all(answers)).toEqual(['result', 'result', 'result']);
    expect(instants()).toEqual([0, 130]);
    expect(upstream.calls.map((c) => c.size)).toEqual([1, 2]);
  });

  it('holds an emptied bucket until every call in flight has landed (leases)', async () => {
    const { clock, upstream, submit, instants } = engine({ ratePerSec: 10, burst: 2 });
    upstream.latencyMs = 250;
    void submit('/users/a', 'k1');
    void submit('/users/b', 'k2');
    await clock.advance(10);
    const late = submit('/users/c', 'k3');
    await clock.advance(1_000);
    expect((await late).kind).toBe('result');
    // Both grants at 0 (the second empties the bucket and holds it); both land at 250; the bucket
    // then holds two arrivals an interval apart: the next grant is at 250 + 100.
    expect(instants()).toEqual([0, 0, 350]);
  });

  it('keeps a 429 pause for its whole Retry-After, then sends once', async () => {
    const { clock, upstream, submit, instants } = engine({ ratePerSec: 10, burst: 1 });
    upstream.script.push(() => ({ status: 429, headers: { 'retry-after': '2' }, body: '{}' }));
    const answer = submit('/users/a');
    await clock.advance(1_999);
    expect(instants()).toEqual([0]);
    await clock.advance(1);
    expect(instants()).toEqual([0, 2_000]);
    expect(await answer).toMatchObject({ kind: 'result', timing: { attempts: 1 } });
  });

  it('reads a Retry-After HTTP date against the clock’s wall time, not the machine’s', async () => {
    const { clock, upstream, submit, instants } = engine({ ratePerSec: 10, burst: 1 });
    // Whole seconds, as an HTTP date has them: 3 s after the call's instant on the manual clock.
    const at = new Date(Math.ceil((clock.epochMs() + 3_000) / 1_000) * 1_000);
    const pause = at.getTime() - clock.epochMs();
    upstream.script.push(() => ({ status: 429, headers: { 'retry-after': at.toUTCString() }, body: '{}' }));
    const answer = submit('/users/a');
    await clock.advance(pause - 1);
    expect(instants()).toEqual([0]);
    await clock.advance(1);
    expect(instants()).toEqual([0, pause]);
    expect(await answer).toMatchObject({ kind: 'result', timing: { attempts: 1 } });
  });

  it('caps an upstream Retry-After at maxRetryAfterMs', async () => {
    const { clock, upstream, submit, instants } = engine(
      { ratePerSec: 10, burst: 1 },
      { maxRetryAfterMs: 5_000 },
    );
    upstream.script.push(() => ({ status: 429, headers: { 'retry-after': '86400' }, body: '{}' }));
    const answer = submit('/users/a');
    await clock.advance(5_000);
    expect((await answer).kind).toBe('result');
    expect(instants()).toEqual([0, 5_000]);
  });

  it('adds the single-call budget to the batch budget under overload (SPEC §7b)', async () => {
    const { clock, submit, instants, upstream } = engine(
      { ratePerSec: 1, burst: 1 },
      { maxOps: 2, windowMs: 5, restLimit: { ratePerSec: 10, burst: 1 } },
    );
    const answers = ['a', 'b', 'c', 'd', 'e', 'f'].map((u) => submit(`/users/${u}`));
    await clock.advance(1_000);
    await Promise.all(answers);
    // One full batch at once; the batch bucket is then closed for a second, so the rest lane takes
    // the oldest ops at its own pace (one per 100 ms).
    expect(upstream.calls.map((c) => [c.at - 1_000, c.lane, c.size])).toEqual([
      [0, 'batch', 2],
      [0, 'single', 1],
      [100, 'single', 1],
      [200, 'single', 1],
      [300, 'single', 1],
    ]);
    expect(instants()).toHaveLength(5);
  });

  it('holds a partial batch longer as the batch bucket runs low (token economy, SPEC §7b)', async () => {
    const { clock, submit, instants } = engine({ ratePerSec: 10, burst: 10 }, { windowMs: 5 });
    // burst 10: a reserve of one token. While more than that is left, a lone op leaves at its
    // window's end; when the next grant would take the reserve, it is held up to one interval.
    for (let i = 0; i < 9; i++) {
      void submit(`/users/u${i}`);
      await clock.advance(5);
    }
    expect(instants()).toEqual([5, 10, 15, 20, 25, 30, 35, 40, 45]);
    void submit('/users/last');
    await clock.advance(200);
    // The ninth grant (at 45) left one token: the next lone op is held a whole interval (100 ms)
    // past its window, so scarce tokens buy fuller batches.
    expect(instants().at(-1)).toBe(45 + 5 + 100);
  });
});

/**
 * The in-process limiter, except that it denies the first `count` acquires of one bucket with a wait
 * of 0 ms (a fleet's turn denial; a wait that was over by the time the engine looked), each answer
 * taking `takesMs` on the clock (the limiter's round trip). Settles, pauses and charges are real.
 */
class DenyFirst extends MemoryLimiter {
  readonly denied: string[] = [];

  constructor(
    private readonly clock: ManualClock,
    private readonly bucket: 'batch' | 'rest',
    private count = 1,
    private readonly takesMs = 0,
  ) {
    super({ now: () => clock.now() });
  }

  override async acquire(key: string, limit: BucketLimit, leaseMs?: number): Promise<Decision> {
    if (!key.endsWith(this.bucket) || this.count <= 0) return super.acquire(key, limit, leaseMs);
    this.count--;
    this.denied.push(key);
    if (this.takesMs > 0) await this.clock.advance(this.takesMs);
    return { granted: false, remaining: 0, retryAfterMs: 0 };
  }
}

/** Two budgets: a batch lane emptied for 10 s by one call, a roomy single lane. */
function twoLanes(limiter: (clock: ManualClock) => Limiter, overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock(1_000);
  const upstream = fakeTransport(clock);
  const scheduler = new Scheduler(
    schedulerOptions({
      upstream,
      limiter: limiter(clock),
      clock,
      windowMs: 0,
      maxWaitMs: 30_000,
      batchLimit: { ratePerSec: 0.1, burst: 1 },
      restLimit: { ratePerSec: 1_000, burst: 100 },
      ...overrides,
    }),
  );
  const submit = (path: string) => scheduler.submit({ appId: 'app', credential: 'k', op: getOp(path) });
  const calls = () => upstream.calls.map((c) => [c.at - 1_000, c.lane]);
  return { clock, submit, calls };
}

describe('a denial whose wait has already passed', () => {
  it('looks again at once-ish, not at the deadline (a turn denial can say "0 ms" in a fleet)', async () => {
    // Seen in the fleet e2e: a replica denied with a wait that was over by the time the pump chose
    // its wake-up slept until its ops' deadline and answered them 503 after 30 s.
    const clock = new ManualClock(1_000);
    const upstream = fakeTransport(clock);
    const limiter = new DenyFirst(clock, 'batch');
    const scheduler = new Scheduler(
      schedulerOptions({
        upstream,
        limiter,
        clock,
        windowMs: 0,
        maxWaitMs: 30_000,
        batchLimit: { ratePerSec: 10, burst: 5 },
      }),
    );
    const answer = scheduler.submit({ appId: 'app', credential: 'k', op: getOp('/users/a') });
    await clock.advance(30_000);
    expect((await answer).kind).toBe('result');
    expect(limiter.denied).toHaveLength(1);
    // Looked again one poll later (the batch interval, 100 ms), far from the 30 s deadline.
    expect(upstream.calls.map((c) => c.at - 1_000)).toEqual([100]);
  });

  it('polls the single lane it was denied on, not the batch lane that opens in 10 s (two lanes)', async () => {
    // CI saw it on the real clock: a 429's pause ended here a few µs before the limiter's own, the
    // single lane was denied for what was left of it, and the wake-up followed the only lane that
    // still said when, the emptied batch lane: the op waited for its deadline, not for a poll.
    let limiter: DenyFirst | undefined;
    const { clock, submit, calls } = twoLanes((c) => {
      limiter = new DenyFirst(c, 'rest');
      return limiter;
    });
    const first = submit('/users/a');
    await clock.advance(0);
    expect((await first).kind).toBe('result');
    const second = submit('/users/b');
    await clock.advance(30_000);
    expect((await second).kind).toBe('result');
    expect(limiter?.denied).toHaveLength(1);
    // The batch token went at 0 and the next opens at 10 s; the single lane, asked again one poll
    // (20 ms) after its denial, carries the second op long before.
    expect(calls()).toEqual([
      [0, 'batch'],
      [20, 'single'],
    ]);
  });

  it('counts the poll from when the denial came back, not from when it was asked', async () => {
    // The limiter takes 5 ms to say "0 ms": judged at the instant it was asked, the wait would look
    // over and the lane would be asked again at once, once per round trip (a hot loop on Redis).
    const { clock, submit, calls } = twoLanes((c) => new DenyFirst(c, 'rest', 1, 5));
    const first = submit('/users/a');
    await clock.advance(0);
    await first;
    const second = submit('/users/b');
    await clock.advance(30_000);
    expect((await second).kind).toBe('result');
    expect(calls()).toEqual([
      [0, 'batch'],
      [25, 'single'],
    ]);
  });

  it('gives the op to the open single lane when the batch lane is denied for what may be 10 s', async () => {
    // A batch denial whose wait has passed is polled one batch interval on (10 s): the batch lane is
    // closed for longer than a window as far as this replica knows, so the single lane serves.
    const { clock, submit, calls } = twoLanes((c) => new DenyFirst(c, 'batch'), { maxWaitMs: 5_000 });
    const first = submit('/users/a');
    await clock.advance(30_000);
    expect((await first).kind).toBe('result');
    expect(calls()).toEqual([[0, 'single']]);
  });

  it('sets no timer for an open single lane it was not denied, while the batch lane reopens within a window', async () => {
    const clock = new ManualClock(1_000);
    const timers: number[] = [];
    const spy: Clock = {
      now: () => clock.now(),
      epochMs: () => clock.epochMs(),
      setTimeout: (fn, ms) => {
        timers.push(clock.now() + ms - 1_000);
        return clock.setTimeout(fn, ms);
      },
    };
    const upstream = fakeTransport(clock);
    const scheduler = new Scheduler(
      schedulerOptions({
        upstream,
        limiter: new MemoryLimiter({ now: () => clock.now() }),
        clock: spy,
        windowMs: 50,
        maxWaitMs: 30_000,
        batchLimit: { ratePerSec: 10, burst: 1 },
        restLimit: { ratePerSec: 1_000, burst: 100 },
      }),
    );
    const submit = (path: string) => scheduler.submit({ appId: 'app', credential: 'k', op: getOp(path) });
    const a = submit('/users/a');
    await clock.advance(60);
    await a;
    const b = submit('/users/b');
    await clock.advance(1_000);
    await b;
    // b's window ends at 110, the batch lane reopens at 150 (one interval after a's answer): one
    // timer for each, none in between for the single lane that was open all along.
    expect(upstream.calls.map((c) => [c.at - 1_000, c.lane])).toEqual([
      [50, 'batch'],
      [150, 'batch'],
    ]);
    expect(timers.filter((t) => t > 110 && t < 150)).toEqual([]);
  });
});
