// The fallback limiter: a real Redis dying and coming back, and the timeout, probe and timer
// discipline against a primary that hangs or fails on command.

import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RedisServer, startRedisServer } from '../testing/redis-server.js';
import { FallbackLimiter, type LimiterMode } from './fallback.js';
import type { BucketLimit, Decision, Grant, Limiter, PaceReport, ScopeNotice } from './limiter.js';
import { MemoryLimiter } from './memory.js';
import { RedisLimiter } from './redis.js';

/** Nothing refills within a test. */
const LIMIT: BucketLimit = { ratePerSec: 0.01, burst: 10 };

const modeChange = (limiter: FallbackLimiter, mode: LimiterMode) =>
  new Promise<void>((resolve) => {
    const off = limiter.onModeChange((m) => {
      if (m !== mode) return;
      off();
      resolve();
    });
  });

describe('FallbackLimiter over a real Redis', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves from memory at the share while Redis is down, and goes back to shared by itself', async () => {
    const primary = RedisLimiter.connect(server.url, {
      redisOptions: { retryStrategy: () => 20 },
    });
    await once(primary.client, 'ready');
    const changes: Array<[LimiterMode, unknown]> = [];
    const limiter = new FallbackLimiter({
      primary,
      share: 0.5,
      probeIntervalMs: 50,
      onModeChange: (mode, cause) => changes.push([mode, cause]),
    });

    try {
      expect(await limiter.acquire('app', LIMIT)).toMatchObject({ granted: true, remaining: 9 });
      expect(limiter.mode).toBe('shared');

      await server.kill();
      const decisions: Decision[] = [];
      const latencies: number[] = [];
      for (let i = 0; i < 6; i++) {
        const started = performance.now();
        decisions.push(await limiter.acquire('app', LIMIT));
        latencies.push(performance.now() - started);
      }
      // No call waits longer than the primary's timeout (250 ms), give or take a busy event loop;
      // the ones after the switch never touch the primary.
      expect(Math.max(...latencies)).toBeLessThan(250 + 250);
      expect(limiter.mode).toBe('fallback');
      // Half of burst 10, in process: 5 grants, then denials.
      expect(decisions.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
      expect(decisions.map((d) => d.granted)).toEqual([true, true, true, true, true, false]);
      expect(changes).toHaveLength(1);
      expect(changes[0]?.[0]).toBe('fallback');
      expect(changes[0]?.[1]).toBeInstanceOf(Error);

      // Settle, pause and peek keep working in process too.
      await limiter.settle('app', LIMIT);
      await limiter.pause('app', LIMIT, 1000);
      expect((await limiter.peek('app', LIMIT)).tokens).toBe(0);

      const back = modeChange(limiter, 'shared');
      await server.restart();
      await back;
      expect(limiter.mode).toBe('shared');
      // Shared state again: the restarted Redis (no persistence) has a full bucket.
      expect(await limiter.acquire('app', LIMIT)).toMatchObject({ granted: true, remaining: 9 });
      expect(changes.map(([mode]) => mode)).toEqual(['fallback', 'shared']);
    } finally {
      await limiter.close();
    }
    expect(primary.client.status).toBe('end');
  });

  it("paces from the fleet's last learned rate while Redis is down, at the share, and learns on", async () => {
    const primary = RedisLimiter.connect(server.url, { redisOptions: { retryStrategy: () => 20 } });
    await once(primary.client, 'ready');
    const limiter = new FallbackLimiter({ primary, share: 0.5, probeIntervalMs: 50 });
    const reports: PaceReport[] = [];
    limiter.onPace((r) => reports.push(r));
    const limit: BucketLimit = {
      ratePerSec: 1,
      burst: 10,
      pace: {
        maxRatePerSec: 100,
        minRatePerSec: 1,
        initialRatePerSec: 50,
        decreaseFactor: 0.5,
        increaseStep: 1,
        probeIntervalMs: 60_000,
      },
    };
    try {
      await limiter.pause('paced', limit, 0); // the fleet learns 25/s
      expect(await limiter.acquire('paced', limit)).toMatchObject({ granted: true, ratePerSec: 25 });
      expect(limiter.mode).toBe('shared');

      await server.kill();
      // In process, at half the fleet's learned rate (not half the initial 50).
      expect(await limiter.acquire('paced', limit)).toMatchObject({ ratePerSec: 12.5 });
      expect(limiter.mode).toBe('fallback');
      // A 429 meanwhile still lowers the rate (this replica's own AIMD, from 25/s).
      await limiter.pause('paced', limit, 0);
      expect(reports.at(-1)).toEqual({ key: 'paced', ratePerSec: 12.5, adjusted: 'decrease' });
      expect(await limiter.acquire('paced', limit)).toMatchObject({ ratePerSec: 6.25 });

      const back = modeChange(limiter, 'shared');
      await server.restart();
      await back;
      // Redis (no persistence) starts the fleet's pace again.
      expect(await limiter.acquire('paced', limit)).toMatchObject({ ratePerSec: 50 });
    } finally {
      await limiter.close();
    }
  });

  it("shares a 429's pause of a fixed-rate bucket (PACING=fixed) with the other replicas while Redis is up", async () => {
    // Two replicas as the proxy builds them with Redis and fixed pacing: a FallbackLimiter each, over
    // its own connection to the one Redis.
    const replica = async () => {
      const primary = RedisLimiter.connect(server.url);
      await once(primary.client, 'ready');
      return new FallbackLimiter({ primary, share: 0.5 });
    };
    const a = await replica();
    const b = await replica();
    const limit: BucketLimit = { ratePerSec: 1, burst: 10 };
    try {
      expect(await b.acquire('fixed-429', limit)).toMatchObject({ granted: true, remaining: 9 });
      // Replica a's call was answered 429, Retry-After 60 s.
      await a.pause('fixed-429', limit, 60_000);
      // Replica b is refused for the pause, though 9 tokens were left before the 429: the one Redis
      // recorded it (on Redis's clock, a few round trips on since).
      const refused = await b.acquire('fixed-429', limit);
      expect(refused).toMatchObject({ granted: false, remaining: 0 });
      const waitMs = refused.granted ? 0 : refused.retryAfterMs;
      expect(waitMs).toBeGreaterThan(59_000);
      expect(waitMs).toBeLessThanOrEqual(60_000);
      expect(await b.peek('fixed-429', limit)).toMatchObject({ tokens: 0 });
      expect([a.mode, b.mode]).toEqual(['shared', 'shared']);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** A primary that answers from memory, hangs, or fails, as the test says. */
class ScriptedPrimary implements Limiter {
  behaviour: 'answer' | 'hang' | 'fail' | 'fail late' = 'answer';
  calls = 0;
  settles = 0;
  closed = false;
  readonly shared: ScopeNotice[] = [];
  readonly sharedListeners: Array<(notice: ScopeNotice) => void> = [];
  readonly #memory = new MemoryLimiter({ now: () => 0 });

  #run<T>(answer: () => Promise<T>): Promise<T> {
    this.calls++;
    switch (this.behaviour) {
      case 'answer':
        return answer();
      case 'hang':
        return new Promise<T>(() => {});
      case 'fail':
        return Promise.reject(new Error('connection refused'));
      case 'fail late':
        return new Promise<T>((_, reject) => setTimeout(() => reject(new Error('too late')), 500));
    }
  }

  acquire(key: string, limit: BucketLimit, leaseMs?: number) {
    return this.#run(() => this.#memory.acquire(key, limit, leaseMs));
  }
  settle(key: string, limit: BucketLimit, grant?: Grant) {
    this.settles++;
    return this.#run(() => this.#memory.settle(key, limit, grant));
  }
  pause(key: string, limit: BucketLimit, ms: number) {
    return this.#run(() => this.#memory.pause(key, limit, ms));
  }
  charge(key: string, limit: BucketLimit, count: number) {
    return this.#run(() => this.#memory.charge(key, limit, count));
  }
  peek(key: string, limit: BucketLimit) {
    return this.#run(() => this.#memory.peek(key, limit));
  }
  share(notice: ScopeNotice) {
    this.shared.push(notice);
  }
  onShared(listener: (notice: ScopeNotice) => void) {
    this.sharedListeners.push(listener);
  }
  close() {
    this.closed = true;
    return Promise.resolve();
  }
}

describe('FallbackLimiter timing', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const setup = (options: { probe?: () => Promise<unknown> } = {}) => {
    vi.useFakeTimers();
    const primary = new ScriptedPrimary();
    const limiter = new FallbackLimiter({ primary, share: 0.5, now: () => 0, ...options });
    return { primary, limiter };
  };

  it('leaves no timer behind for a call the primary answers', async () => {
    const { limiter } = setup();
    expect(await limiter.acquire('k', LIMIT)).toMatchObject({ granted: true, remaining: 9 });
    expect(vi.getTimerCount()).toBe(0);
    await limiter.close();
  });

  it('answers from memory once the primary has not answered within the timeout', async () => {
    const { primary, limiter } = setup();
    primary.behaviour = 'hang';
    let decision: Decision | undefined;
    const pending = limiter.acquire('k', LIMIT).then((d) => {
      decision = d;
    });
    await vi.advanceTimersByTimeAsync(249);
    expect(decision).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await pending;
    expect(decision).toMatchObject({ granted: true, remaining: 4, settleAfterMs: 0 });
    expect(limiter.mode).toBe('fallback');
    // Only the probe's timer is left.
    expect(vi.getTimerCount()).toBe(1);
    await limiter.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(primary.closed).toBe(true);
  });

  it('settles each grant where it was made, the primary even while in fallback', async () => {
    const { primary, limiter } = setup({ probe: () => new Promise(() => {}) });
    const shared = await limiter.acquire('k', LIMIT, 5_000);
    primary.behaviour = 'fail';
    const local = await limiter.acquire('k', LIMIT, 5_000);
    expect(limiter.mode).toBe('fallback');
    if (!shared.granted || !local.granted) throw new Error('expected two grants');
    primary.behaviour = 'answer';
    // The primary counts its grant in flight until it is settled there.
    await limiter.settle('k', LIMIT, shared.grant);
    expect(primary.settles).toBe(1);
    // The in-process grant is settled in process: the primary never heard of it.
    await limiter.settle('k', LIMIT, local.grant);
    expect(primary.settles).toBe(1);
    await limiter.close();
  });

  it('forwards scope notices to and from the primary; shares none while in fallback', async () => {
    const { primary, limiter } = setup({ probe: () => new Promise(() => {}) });
    const heard: ScopeNotice[] = [];
    limiter.onShared((n) => heard.push(n));
    const notice = { appId: 'app', group: 'ab'.repeat(16), pauseMs: 100 };
    primary.sharedListeners.forEach((l) => {
      l(notice);
    });
    expect(heard).toEqual([notice]);
    limiter.share(notice);
    expect(primary.shared).toEqual([notice]);
    primary.behaviour = 'fail';
    await limiter.acquire('k', LIMIT);
    expect(limiter.mode).toBe('fallback');
    // The primary is left alone while down (only the probe touches it).
    limiter.share(notice);
    expect(primary.shared).toEqual([notice]);
    await limiter.close();
  });

  it('absorbs a primary that rejects after its call was already served from memory', async () => {
    const { primary, limiter } = setup({ probe: () => new Promise(() => {}) });
    primary.behaviour = 'fail late';
    const pending = limiter.acquire('k', LIMIT);
    await vi.advanceTimersByTimeAsync(250);
    expect(await pending).toMatchObject({ granted: true });
    // The late rejection lands now; an unhandled one would fail this test file.
    await vi.advanceTimersByTimeAsync(500);
    await limiter.close();
  });

  it('probes every interval while the primary fails, and switches back on the first answer', async () => {
    const { primary, limiter } = setup();
    const modes: LimiterMode[] = [];
    limiter.onModeChange((mode) => modes.push(mode));
    primary.behaviour = 'fail';
    await limiter.acquire('k', LIMIT);
    expect(limiter.mode).toBe('fallback');
    const failedCalls = primary.calls;

    // In fallback the primary sees only probes, one a second.
    await limiter.acquire('k', LIMIT);
    expect(primary.calls).toBe(failedCalls);
    await vi.advanceTimersByTimeAsync(3000);
    expect(primary.calls).toBe(failedCalls + 3);
    expect(limiter.mode).toBe('fallback');

    primary.behaviour = 'answer';
    await vi.advanceTimersByTimeAsync(1000);
    expect(limiter.mode).toBe('shared');
    expect(modes).toEqual(['fallback', 'shared']);
    // No probe once shared.
    expect(vi.getTimerCount()).toBe(0);
    expect(await limiter.acquire('k', LIMIT)).toMatchObject({ granted: true, remaining: 9 });
    await limiter.close();
  });

  it('stops probing on close', async () => {
    const { primary, limiter } = setup();
    primary.behaviour = 'fail';
    await limiter.acquire('k', LIMIT);
    await limiter.close();
    const calls = primary.calls;
    await vi.advanceTimersByTimeAsync(5000);
    expect(primary.calls).toBe(calls);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('bounds a hanging probe by the timeout and keeps probing', async () => {
    let probes = 0;
    const { primary, limiter } = setup({
      probe: () => {
        probes++;
        return new Promise(() => {});
      },
    });
    primary.behaviour = 'fail';
    await limiter.acquire('k', LIMIT);
    await vi.advanceTimersByTimeAsync(3 * 1250);
    expect(probes).toBe(3);
    expect(limiter.mode).toBe('fallback');
    await limiter.close();
  });

  it('survives a mode listener that throws', async () => {
    const { primary, limiter } = setup();
    limiter.onModeChange(() => {
      throw new Error('listener bug');
    });
    primary.behaviour = 'fail';
    expect(await limiter.acquire('k', LIMIT)).toMatchObject({ granted: true });
    expect(limiter.mode).toBe('fallback');
    await limiter.close();
  });

  it('refuses a share outside (0, 1]', () => {
    const primary = new ScriptedPrimary();
    expect(() => new FallbackLimiter({ primary, share: 0 })).toThrow(TypeError);
    expect(() => new FallbackLimiter({ primary, share: 1.5 })).toThrow(TypeError);
  });
});
