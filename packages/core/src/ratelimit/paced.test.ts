// PACING=adaptive in front of a limiter: which buckets learn their rate, and the board of rates.

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../batcher/clock.js';
import { type BucketLimit, bucketKey, type Limiter, type ScopeNotice } from './limiter.js';
import { MemoryLimiter } from './memory.js';
import type { PaceParams } from './pace.js';
import { PaceBoard, PacedLimiter } from './paced.js';

const PACE: PaceParams = {
  maxRatePerSec: 40,
  minRatePerSec: 1,
  initialRatePerSec: 20,
  decreaseFactor: 0.5,
  increaseStep: 1,
  probeIntervalMs: 1000,
};
const LIMIT: BucketLimit = { ratePerSec: 3, burst: 1 };

function paced() {
  const clock = new ManualClock(0);
  const memory = new MemoryLimiter({ now: () => clock.now() });
  const limiter = new PacedLimiter(memory, { pace: PACE, buckets: new Set(['batch']) });
  const board = new PaceBoard(() => clock.now());
  limiter.onPace(board.record);
  return { clock, limiter, board };
}

describe('PacedLimiter', () => {
  it('learns the rate of the named buckets only', async () => {
    const { limiter } = paced();
    const batch = bucketKey('https://u', 'app', 'batch');
    const rest = bucketKey('https://u', 'app', 'rest');
    expect(await limiter.acquire(batch, LIMIT)).toMatchObject({ granted: true, ratePerSec: 20 });
    await limiter.pause(batch, LIMIT, 0);
    expect(await limiter.acquire(batch, LIMIT)).toMatchObject({ ratePerSec: 10 });
    const fixed = await limiter.acquire(rest, LIMIT);
    expect(fixed).toMatchObject({ granted: true });
    expect(fixed).not.toHaveProperty('ratePerSec');
  });
});

describe('PacedLimiter scope notices', () => {
  it('forwards share and onShared to the limiter it wraps', () => {
    const memory = new MemoryLimiter();
    const shared: ScopeNotice[] = [];
    const listeners: Array<(n: ScopeNotice) => void> = [];
    const inner: Limiter = {
      acquire: memory.acquire.bind(memory),
      settle: memory.settle.bind(memory),
      pause: memory.pause.bind(memory),
      charge: memory.charge.bind(memory),
      peek: memory.peek.bind(memory),
      close: memory.close.bind(memory),
      share: (n) => shared.push(n),
      onShared: (l) => listeners.push(l),
    };
    const limiter = new PacedLimiter(inner, { pace: PACE, buckets: new Set(['batch']) });
    const notice = { appId: 'app', group: 'ab'.repeat(16), paceMs: 200 };
    limiter.share(notice);
    const heard: ScopeNotice[] = [];
    limiter.onShared((n) => heard.push(n));
    for (const l of listeners) l(notice);
    expect([shared, heard]).toEqual([[notice], [notice]]);
    // Over a backend with one replica: nothing to tell, nothing thrown.
    const alone = new PacedLimiter(memory, { pace: PACE, buckets: new Set(['batch']) });
    expect(() => alone.share(notice)).not.toThrow();
    alone.onShared(() => {});
  });
});

describe('PaceBoard', () => {
  it('gives min, median and max over active buckets, and counts adjustments', async () => {
    const { clock, limiter, board } = paced();
    expect(board.stats()).toEqual({
      min: undefined,
      median: undefined,
      max: undefined,
      increases: 0,
      decreases: 0,
    });
    for (const app of ['a', 'b', 'c']) await limiter.acquire(bucketKey('u', app, 'batch'), LIMIT);
    await limiter.pause(bucketKey('u', 'a', 'batch'), LIMIT, 0);
    await limiter.pause(bucketKey('u', 'a', 'batch'), LIMIT, 0); // same cooldown: no second decrease
    expect(board.stats()).toEqual({ min: 10, median: 20, max: 20, increases: 0, decreases: 1 });
    // A bucket quiet for 10 minutes is no longer active.
    await clock.advance(300_000);
    await limiter.acquire(bucketKey('u', 'b', 'batch'), LIMIT);
    await clock.advance(300_000);
    expect(board.stats()).toMatchObject({ min: 20, median: 20, max: 20 });
    expect(board.rate(bucketKey('u', 'a', 'batch'))).toBeUndefined();
    expect(board.rate(bucketKey('u', 'b', 'batch'))).toBe(20);
  });

  it('lists the buckets heard from last, newest first, with how long since their last decrease', async () => {
    const { clock, limiter, board } = paced();
    for (const app of ['a', 'b', 'c']) await limiter.acquire(bucketKey('u', app, 'batch'), LIMIT);
    await limiter.pause(bucketKey('u', 'a', 'batch'), LIMIT, 0);
    await clock.advance(1_500);
    await limiter.acquire(bucketKey('u', 'b', 'batch'), LIMIT);
    expect(board.recent(2)).toEqual([
      { key: bucketKey('u', 'b', 'batch'), ratePerSec: 20, sinceDecreaseMs: undefined },
      { key: bucketKey('u', 'a', 'batch'), ratePerSec: 10, sinceDecreaseMs: 1_500 },
    ]);
    // A later report without a decrease keeps the last one.
    await limiter.acquire(bucketKey('u', 'a', 'batch'), LIMIT);
    await clock.advance(500);
    expect(board.recent(1)).toEqual([
      { key: bucketKey('u', 'a', 'batch'), ratePerSec: 10, sinceDecreaseMs: 2_000 },
    ]);
    // Idle buckets drop out.
    await clock.advance(600_000);
    expect(board.recent(20)).toEqual([]);
  });
});
