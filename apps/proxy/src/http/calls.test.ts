import { describe, expect, it } from 'vitest';
import { CallTracker } from './calls.js';

describe('CallTracker', () => {
  it('is idle at once with no call open', async () => {
    await expect(new CallTracker().idle()).resolves.toBeUndefined();
  });

  it('resolves idle() when the last open call ends, once per call however often end is called', async () => {
    const calls = new CallTracker();
    const a = calls.begin();
    const b = calls.begin();
    let idle = false;
    const waiting = calls.idle().then(() => {
      idle = true;
    });
    a();
    a();
    await Promise.resolve();
    expect(calls.count).toBe(1);
    expect(idle).toBe(false);
    b();
    await waiting;
    expect(idle).toBe(true);
    expect(calls.count).toBe(0);
  });
});
