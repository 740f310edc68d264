// The pump's contract: one pass at a time, a kick during a pass runs one more pass after it, a pass
// that decides without waiting runs inside kick() itself (no promise, no microtask: a pass runs on
// every arrival and answer), and the wake-up timer is armed for the earliest time a pass asked for.
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { Pump, type StepResult } from './pump.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A pump on a manual clock whose n-th pass (from 1) answers `answer(n)`; `passes()` counts them. */
function counted(
  answer: (pass: number) => StepResult | Promise<StepResult>,
  crashed: (error: unknown) => void = () => {},
  clock = new ManualClock(0),
) {
  let n = 0;
  const pump = new Pump(clock, () => answer(++n), crashed);
  return { clock, pump, passes: () => n };
}

const NEVER = Number.POSITIVE_INFINITY;

describe('Pump', () => {
  it('runs a pass that does not wait inside kick(), and arms its timer before kick() returns', () => {
    const clock = new ManualClock(1_000);
    const at: number[] = [];
    const { pump } = counted(
      () => {
        at.push(clock.now());
        return 1_050;
      },
      undefined,
      clock,
    );
    pump.kick();
    expect(at).toEqual([1_000]);
    expect(clock.pending).toBe(1);
    expect(pump.isIdle).toBe(false);
  });

  it('passes again while a pass reports progress, then sleeps until the time the last one named', async () => {
    const results: StepResult[] = [true, true, 40];
    const { clock, pump, passes } = counted((n) => results[n - 1] ?? NEVER);
    pump.kick();
    expect(passes()).toBe(3);
    await clock.advance(39);
    expect(passes()).toBe(3);
    await clock.advance(1);
    expect(passes()).toBe(4);
    expect(pump.isIdle).toBe(true);
  });

  it('runs one more pass after a waiting pass when kicked during it, not one per kick', async () => {
    const waiting = deferred<StepResult>();
    const { pump, passes } = counted((n) => (n === 1 ? waiting.promise : NEVER));
    pump.kick();
    pump.kick();
    pump.kick();
    expect(passes()).toBe(1);
    waiting.resolve(NEVER);
    await waiting.promise;
    await Promise.resolve();
    expect(passes()).toBe(2);
    expect(pump.isIdle).toBe(true);
  });

  it('reports a pass that throws or rejects as a crash and keeps serving kicks', async () => {
    const crashes: unknown[] = [];
    const failing = deferred<StepResult>();
    const { pump, passes } = counted(
      (n) => {
        if (n === 1) throw new Error('sync');
        return n === 2 ? failing.promise : NEVER;
      },
      (error) => crashes.push(error),
    );
    pump.kick();
    expect(crashes).toEqual([new Error('sync')]);
    pump.kick();
    pump.kick(); // during the waiting pass: one more pass after it, even though it fails
    failing.reject(new Error('async'));
    await failing.promise.catch(() => {});
    await Promise.resolve();
    expect(crashes).toEqual([new Error('sync'), new Error('async')]);
    expect(passes()).toBe(3);
    pump.kick();
    expect(passes()).toBe(4);
  });

  it('keeps the earliest wake-up, and none once stopped', async () => {
    const results: StepResult[] = [50, 80, 60];
    const { clock, pump, passes } = counted((n) => results[n - 1] ?? NEVER);
    pump.kick(); // asks for 50
    pump.kick(); // asks for 80: the timer for 50 stays
    await clock.advance(50);
    expect(passes()).toBe(3); // woke at 50; that pass asked for 60
    pump.stop();
    pump.kick();
    expect(passes()).toBe(3);
    expect(clock.pending).toBe(0);
  });

  it('runs one pass after a held run of kicks (the answers of a batch), not one per kick', () => {
    const { pump, passes } = counted(() => NEVER);
    pump.hold(() => {
      for (let i = 0; i < 10; i++) pump.kick();
      expect(passes()).toBe(0);
    });
    expect(passes()).toBe(1);
    pump.hold(() => {}); // no kick: no pass
    expect(passes()).toBe(1);
  });

  it('is not left running when reporting a crash throws: the next kick runs a pass', () => {
    const { pump, passes } = counted(
      (n) => {
        if (n === 1) throw new Error('step');
        return NEVER;
      },
      () => {
        throw new Error('report');
      },
    );
    expect(() => pump.kick()).toThrow('report');
    pump.kick();
    expect(passes()).toBe(2);
    expect(pump.isIdle).toBe(true);
  });

  it('holds kicks inside a waiting pass without starting a second pass beside it', async () => {
    const waiting = deferred<StepResult>();
    const { pump, passes } = counted((n) => (n === 1 ? waiting.promise : NEVER));
    pump.kick(); // a pass waiting for its token
    pump.hold(() => pump.kick()); // an earlier call's answers land meanwhile
    expect(passes()).toBe(1);
    waiting.resolve(NEVER);
    await waiting.promise;
    await Promise.resolve();
    expect(passes()).toBe(2); // the held kick: one more pass, after the waiting one
    expect(pump.isIdle).toBe(true);
  });
});

describe('Pump on a clock that defers passes to the end of the turn', () => {
  const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('runs one pass for every kick of one turn, after the turn', async () => {
    const { pump, passes } = counted(() => NEVER, undefined, new ManualClock(0, { deferred: true }));
    pump.kick();
    pump.kick();
    pump.kick();
    expect(passes()).toBe(0);
    expect(pump.isIdle).toBe(false);
    await turnEnd();
    expect(passes()).toBe(1);
    expect(pump.isIdle).toBe(true);
    pump.kick();
    await turnEnd();
    expect(passes()).toBe(2);
  });

  it('runs no deferred pass once stopped', async () => {
    const { pump, passes } = counted(() => NEVER, undefined, new ManualClock(0, { deferred: true }));
    pump.kick();
    pump.stop();
    await turnEnd();
    expect(passes()).toBe(0);
  });

  it('a kick during a held pass runs one deferred pass after it; a pass under way when it fires runs once more', async () => {
    const wait = deferred<StepResult>();
    const { pump, passes } = counted(
      (n) => (n === 1 ? wait.promise : NEVER),
      undefined,
      new ManualClock(0, { deferred: true }),
    );
    pump.hold(() => {
      pump.kick();
      pump.kick();
    });
    expect(passes()).toBe(0);
    await turnEnd();
    // The first pass waits; a kick now is remembered, not run beside it.
    expect(passes()).toBe(1);
    pump.kick();
    await turnEnd();
    expect(passes()).toBe(1);
    wait.resolve(NEVER);
    await turnEnd();
    expect(passes()).toBe(2);
    expect(pump.isIdle).toBe(true);
  });
});
