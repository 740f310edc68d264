// RATE_HEADERS through the engine on a manual clock: an answer's figures space the next calls of its
// scope (what remains over the time to reset, less the margin), nothing left pauses until the reset,
// and `off` leaves the operator's rate alone.

import { describe, expect, it } from 'vitest';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { getOp } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

function engine(headers: Record<string, string>, overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock(1_000);
  const upstream = fakeTransport(clock);
  upstream.respond = (call) => ({ ...upstream.answerOps(call), headers });
  const scheduler = new Scheduler(
    schedulerOptions({
      upstream,
      windowMs: 0,
      maxOps: 1,
      maxWaitMs: 60_000,
      batchLimit: { ratePerSec: 100, burst: 1 },
      limiter: new MemoryLimiter({ now: () => clock.now() }),
      clock,
      rateHeaders: { mode: 'auto', margin: 0.1 },
      ...overrides,
    }),
  );
  const submit = (path: string) => scheduler.submit({ appId: 'app', credential: 'k', op: getOp(path) });
  const instants = () => upstream.calls.map((c) => Math.round(c.at - 1_000));
  return { clock, submit, instants };
}

describe('pacing from rate headers (engine)', () => {
  it('spaces the next calls at what remains, less the margin, over the time to reset', async () => {
    // 9 left for 1 s, 10 % held back: 8.1/s, one call every 123.5 ms (the operator allows 100/s).
    const { clock, submit, instants } = engine({ ratelimit: '"d";r=9;t=1' });
    const answers = ['/users/a', '/users/b', '/users/c'].map(submit);
    await clock.advance(1_000);
    await Promise.all(answers);
    expect(instants()).toEqual([0, 123, 247]);
  });

  it('pauses the scope until the reset when nothing remains', async () => {
    const { clock, submit, instants } = engine({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' });
    const answers = ['/users/a', '/users/b'].map(submit);
    await clock.advance(1_999);
    expect(instants()).toEqual([0]);
    await clock.advance(1);
    await Promise.all(answers);
    expect(instants()).toEqual([0, 2_000]);
  });

  it('goes at the operator rate with RATE_HEADERS=off, or when no figures come', async () => {
    for (const [headers, rateHeaders] of [
      [{ ratelimit: '"d";r=9;t=1' }, { mode: 'off', margin: 0.1 }],
      [{}, { mode: 'auto', margin: 0.1 }],
      [{ ratelimit: '"d";r=9;t=1' }, undefined],
    ] as const) {
      const { clock, submit, instants } = engine(headers, { rateHeaders });
      const answers = ['/users/a', '/users/b', '/users/c'].map(submit);
      await clock.advance(1_000);
      await Promise.all(answers);
      expect(instants()).toEqual([0, 10, 20]);
    }
  });

  it('reads only the named style: X-RateLimit figures are ignored under RATE_HEADERS=ietf', async () => {
    const { clock, submit, instants } = engine(
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' },
      { rateHeaders: { mode: 'ietf', margin: 0.1 } },
    );
    const answers = ['/users/a', '/users/b'].map(submit);
    await clock.advance(1_000);
    await Promise.all(answers);
    expect(instants()).toEqual([0, 10]);
  });
});
