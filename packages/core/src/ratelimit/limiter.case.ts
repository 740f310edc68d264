// The conformance suite every Limiter backend passes (memory.test.ts, redis.test.ts): same cases,
// same expectations, so the in-process and the shared limiter cannot drift apart.
//
// Timing without flakiness: the arithmetic is made to dominate (rates so low nothing refills during
// a test), and where time must pass the test waits for the reported retryAfterMs — that is the event
// under test — and then asserts the grant. Time-dependent values are asserted within a bracket:
// measured before the first call and after the last, widened by the backend's clock slack.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BucketLimit, Decision, Limiter } from './limiter.js';

export interface ConformanceOptions {
  /**
   * How far the backend's clock may read from this process's `performance.now()` over a test, in ms
   * (0 for the in-process limiter; Redis reads its own `TIME`).
   */
  slackMs?: number;
}

/** Nothing refills within a test: one token per 100 s. */
const SLOW: BucketLimit = { ratePerSec: 0.01, burst: 5 };
const SLOW_INTERVAL = 100_000;

export function describeLimiterConformance(
  name: string,
  create: () => Limiter | Promise<Limiter>,
  options: ConformanceOptions = {},
): void {
  const slack = options.slackMs ?? 0;

  describe(`${name} (limiter conformance)`, () => {
    let limiter: Limiter;
    let keys = 0;
    const key = () => `conformance:${Date.now()}:${keys++}`;

    beforeAll(async () => {
      limiter = await create();
    });
    afterAll(async () => {
      await limiter?.close();
    });

    /** Waits for a reported delay, rounded up: timers may fire a fraction of a ms early. */
    const waitFor = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.ceil(ms) + slack + 1));

    /** Expects `value` within [low, high], both widened by the clock slack. */
    const expectWithin = (value: number, low: number, high: number) => {
      expect(value).toBeGreaterThanOrEqual(low - slack);
      expect(value).toBeLessThanOrEqual(high + slack);
    };

    const granted = (decision: Decision) => {
      if (!decision.granted) throw new Error(`expected a grant, got ${JSON.stringify(decision)}`);
      return decision;
    };
    const denied = (decision: Decision) => {
      if (decision.granted) throw new Error(`expected a denial, got ${JSON.stringify(decision)}`);
      return decision;
    };
    /**
     * Expects the bucket open within `ms`: denied with a wait of at most `ms`, or granted already (on
     * a loaded machine more than `ms` may pass between the step before and this acquire).
     */
    const expectOpenWithin = (decision: Decision, ms: number) => {
      if (!decision.granted) expectWithin(decision.retryAfterMs, 0, ms);
    };

    it('grants exactly burst calls, counting remaining down to 0, then denies', async () => {
      const k = key();
      const remaining: number[] = [];
      for (let i = 0; i < SLOW.burst; i++) remaining.push(granted(await limiter.acquire(k, SLOW)).remaining);
      expect(remaining).toEqual([4, 3, 2, 1, 0]);
      expect(await limiter.acquire(k, SLOW)).toMatchObject({ granted: false, remaining: 0 });
      expect(await limiter.acquire(k, SLOW)).toMatchObject({ granted: false, remaining: 0 });
    });

    it('says a granted call needs settling only once it outlives the grants queued before it', async () => {
      const k = key();
      const started = performance.now();
      const first = granted(await limiter.acquire(k, SLOW));
      const second = granted(await limiter.acquire(k, SLOW));
      const elapsed = performance.now() - started;
      // A fresh bucket: the first call's successor may follow at once, so any late answer matters.
      expect(first.settleAfterMs).toBeCloseTo(0, 2);
      // The second grant was one interval ahead of the bucket's schedule.
      expectWithin(second.settleAfterMs, SLOW_INTERVAL - elapsed, SLOW_INTERVAL);
    });

    it('denies with retryAfterMs equal to the time until the next token', async () => {
      const k = key();
      const started = performance.now();
      for (let i = 0; i < SLOW.burst; i++) granted(await limiter.acquire(k, SLOW));
      const { retryAfterMs } = denied(await limiter.acquire(k, SLOW));
      const elapsed = performance.now() - started;
      // The first grant's token comes back one interval after it was taken.
      expectWithin(retryAfterMs, SLOW_INTERVAL - elapsed, SLOW_INTERVAL);
    });

    it('grants one token again once retryAfterMs has passed', async () => {
      const k = key();
      const limit = { ratePerSec: 5, burst: 2 }; // 200 ms apart: room for a late timer on a busy machine
      granted(await limiter.acquire(k, limit));
      granted(await limiter.acquire(k, limit));
      const { retryAfterMs } = denied(await limiter.acquire(k, limit));
      expectWithin(retryAfterMs, 0, 200);
      await waitFor(retryAfterMs);
      expect(await limiter.acquire(k, limit)).toMatchObject({ granted: true, remaining: 0 });
      denied(await limiter.acquire(k, limit));
    });

    it('spaces the next grant one interval from settle, not from the grant', async () => {
      const k = key();
      const limit = { ratePerSec: 20, burst: 1 }; // 50 ms apart
      granted(await limiter.acquire(k, limit));
      // The upstream takes 30 ms to answer: without settle the next grant would be 20 ms away.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const settling = performance.now();
      await limiter.settle(k, limit);
      const { retryAfterMs } = denied(await limiter.acquire(k, limit));
      expectWithin(retryAfterMs, 50 - (performance.now() - settling), 50);
      await waitFor(retryAfterMs);
      granted(await limiter.acquire(k, limit));
    });

    it('keeps an emptied bucket closed under a lease until its call is settled', async () => {
      const k = key();
      const limit = { ratePerSec: 10, burst: 2 }; // 100 ms apart
      // The first grant leaves a token: it flies, but does not close the bucket.
      const first = granted(await limiter.acquire(k, limit, 5_000));
      expect(first).toMatchObject({ remaining: 1, grant: { leased: true } });
      const last = granted(await limiter.acquire(k, limit, 5_000));
      expect(last).toMatchObject({ remaining: 0, grant: { leased: true } });
      // Long past one interval the bucket stays closed while the calls are out...
      const held = denied(await limiter.acquire(k, limit, 5_000));
      expect(held.retryAfterMs).toBeGreaterThan(4_000);
      // ...the last call's answer is not enough: the first may still arrive late...
      await limiter.settle(k, limit, last.grant);
      expect(denied(await limiter.acquire(k, limit)).retryAfterMs).toBeGreaterThan(4_000);
      // ...and the first one's answer opens it: the next grant is at most one interval away again.
      await limiter.settle(k, limit, first.grant);
      expectOpenWithin(await limiter.acquire(k, limit), 100);
    });

    it('counts a call still flying long after its grant as arriving now', async () => {
      const k = key();
      const limit = { ratePerSec: 10, burst: 2 }; // 100 ms apart
      const first = granted(await limiter.acquire(k, limit, 5_000));
      expect(first.remaining).toBe(1);
      // By the grants alone the bucket is full again after 200 ms. But the first call is not
      // answered: it may reach the upstream together with the next two, and burst 2 admits two.
      await new Promise((resolve) => setTimeout(resolve, 250));
      const second = granted(await limiter.acquire(k, limit, 5_000));
      expect(second.remaining).toBe(0);
      expect(denied(await limiter.acquire(k, limit, 5_000)).retryAfterMs).toBeGreaterThan(4_000);
      // Its answer places it: from then on one token per interval again.
      await limiter.settle(k, limit, first.grant);
      await limiter.settle(k, limit, second.grant);
      expectOpenWithin(await limiter.acquire(k, limit), 100);
    });

    it('spaces the next grant one interval from the last of several calls to land', async () => {
      const limit = { ratePerSec: 2.5, burst: 2 }; // 400 ms apart
      // The two acquires after A's answer must land within one interval of it, or the bucket has
      // refilled by then whatever it did: a run where the machine stalled that long (a GC, other
      // processes) proves nothing and is made again, at most three times.
      for (let run = 1; ; run++) {
        const k = key();
        // A full bucket: a slow call A, then a prompt call B that empties it.
        const a = granted(await limiter.acquire(k, limit, 5_000));
        const b = granted(await limiter.acquire(k, limit, 5_000));
        await limiter.settle(k, limit, b.grant);
        // A may arrive as late as its answer, after B: the upstream's bucket then holds A's arrival
        // plus one interval, i.e. one token for now and the next one interval after A's answer (the
        // grants alone would have given two tokens by now).
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const answered = performance.now();
        await limiter.settle(k, limit, a.grant);
        const next = await limiter.acquire(k, limit);
        const after = await limiter.acquire(k, limit);
        const elapsed = performance.now() - answered;
        if (elapsed >= 300 && run < 3) continue;
        granted(next);
        expectWithin(denied(after).retryAfterMs, 400 - elapsed, 400);
        return;
      }
    });

    it('keeps a pause that came after the lease when the lease is settled', async () => {
      const k = key();
      const limit = { ratePerSec: 1000, burst: 1 };
      const { grant } = granted(await limiter.acquire(k, limit, 50));
      await limiter.pause(k, limit, 60_000);
      const { reopenInMs } = await limiter.settle(k, limit, grant);
      expect(reopenInMs).toBeGreaterThan(50_000);
      expect(denied(await limiter.acquire(k, limit)).retryAfterMs).toBeGreaterThan(50_000);
    });

    it('says on settle when the bucket grants again: one interval after the answer', async () => {
      const k = key();
      const limit = { ratePerSec: 10, burst: 1 }; // 100 ms apart
      const { grant } = granted(await limiter.acquire(k, limit, 5_000));
      const settling = performance.now();
      const { reopenInMs } = await limiter.settle(k, limit, grant);
      // (A hair above 100: the TAT is an absolute time, so the subtraction rounds.)
      expectWithin(reopenInMs, 100 - (performance.now() - settling), 100 + 1e-6);
    });

    it('charges calls that took no grant, into debt past the burst', async () => {
      const k = key();
      const started = performance.now();
      await limiter.charge(k, SLOW, SLOW.burst + 2);
      const { tokens, cooldownMs } = await limiter.peek(k, SLOW);
      expect(tokens).toBe(0);
      // Seven intervals charged on a bucket of five: three intervals until the next token.
      expectWithin(cooldownMs, 3 * SLOW_INTERVAL - (performance.now() - started), 3 * SLOW_INTERVAL);
    });

    it('leaves a bucket alone on settle when its next grant is already further away', async () => {
      const k = key();
      for (let i = 0; i < 3; i++) granted(await limiter.acquire(k, SLOW));
      await limiter.settle(k, SLOW);
      // Spacing from now would have given tokens back (4 left); under load settle changes nothing.
      expect((await limiter.peek(k, SLOW)).tokens).toBe(2);
    });

    it('denies every grant for a pause, then grants exactly one token', async () => {
      const k = key();
      // 1 s apart: a wait for the pause's end that a loaded machine stretches by up to a second
      // still finds the next token unrefilled (at 250 ms apart it flaked under a parallel run).
      const limit = { ratePerSec: 1, burst: 3 };
      const pausing = performance.now();
      await limiter.pause(k, limit, 100);
      const peeked = await limiter.peek(k, limit);
      expect(peeked.tokens).toBe(0);
      expectWithin(peeked.cooldownMs, 100 - (performance.now() - pausing), 100);
      const { retryAfterMs } = denied(await limiter.acquire(k, limit));
      expectWithin(retryAfterMs, 100 - (performance.now() - pausing), 100);
      await waitFor(retryAfterMs);
      expect(await limiter.acquire(k, limit)).toMatchObject({ granted: true, remaining: 0 });
      const next = denied(await limiter.acquire(k, limit));
      // The bucket was modelled empty after the pause: the next token is one interval after its end.
      expectWithin(next.retryAfterMs, 1_100 - (performance.now() - pausing), 1_000);
    });

    it('never shortens a pause with a shorter one', async () => {
      const k = key();
      const pausing = performance.now();
      await limiter.pause(k, SLOW, 10_000);
      await limiter.pause(k, SLOW, 10);
      const pausedFor = (await limiter.peek(k, SLOW)).cooldownMs;
      expectWithin(pausedFor, 10_000 - (performance.now() - pausing), 10_000);
    });

    it('peeks at tokens and cooldown without taking any', async () => {
      const k = key();
      const limit = { ...SLOW, burst: 3 };
      expect(await limiter.peek(k, limit)).toEqual({ tokens: 3, cooldownMs: 0 });
      expect(await limiter.peek(k, limit)).toEqual({ tokens: 3, cooldownMs: 0 });
      const started = performance.now();
      granted(await limiter.acquire(k, limit));
      expect(await limiter.peek(k, limit)).toEqual({ tokens: 2, cooldownMs: 0 });
      granted(await limiter.acquire(k, limit));
      granted(await limiter.acquire(k, limit));
      const empty = await limiter.peek(k, limit);
      const elapsed = performance.now() - started;
      expect(empty.tokens).toBe(0);
      expectWithin(empty.cooldownMs, SLOW_INTERVAL - elapsed, SLOW_INTERVAL);
      denied(await limiter.acquire(k, limit));
    });

    it('keeps buckets of different keys independent', async () => {
      const a = key();
      const b = key();
      for (let i = 0; i < SLOW.burst; i++) granted(await limiter.acquire(a, SLOW));
      denied(await limiter.acquire(a, SLOW));
      expect(await limiter.peek(b, SLOW)).toEqual({ tokens: SLOW.burst, cooldownMs: 0 });
      expect(await limiter.acquire(b, SLOW)).toMatchObject({ granted: true, remaining: SLOW.burst - 1 });
      await limiter.pause(a, SLOW, 5000);
      expect(await limiter.peek(b, SLOW)).toEqual({ tokens: SLOW.burst - 1, cooldownMs: 0 });
    });

    it('answers concurrent acquires on one bucket with exactly burst grants', async () => {
      const k = key();
      const decisions = await Promise.all(Array.from({ length: 12 }, () => limiter.acquire(k, SLOW)));
      const grants = decisions.filter((d) => d.granted);
      expect(grants).toHaveLength(SLOW.burst);
      expect(grants.map((d) => d.remaining).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4]);
    });
  });
}
