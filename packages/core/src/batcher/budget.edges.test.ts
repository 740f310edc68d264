// A Budget's arithmetic at its edges, on a manual clock: what a denial, an emptying grant, a settle,
// a pause and a reopen notice leave behind, to the millisecond. The limiter here replays scripted
// decisions (the real limiters are tested on their own, limiter.case.ts), so each edge can be placed
// exactly: a wait equal to the lease, a settle exactly at the tolerance, a poll below its floor.

import { describe, expect, it } from 'vitest';
import type { BucketLimit, Decision, Grant, Limiter, Waiting } from '../ratelimit/limiter.js';
import { Budget } from './budget.js';
import { ManualClock } from './clock.js';

const LEASE_MS = 5_000;
const lease: Grant = { leased: true };

class ScriptedLimiter implements Limiter {
  readonly decisions: Decision[] = [];
  readonly reopens: number[] = [];
  readonly calls: unknown[][] = [];

  acquire(key: string, limit: BucketLimit, leaseMs?: number, waiting?: Waiting): Promise<Decision> {
    this.calls.push(['acquire', key, limit, leaseMs, waiting]);
    const next = this.decisions.shift();
    return next ? Promise.resolve(next) : Promise.reject(new Error('no decision scripted'));
  }

  settle(key: string, limit: BucketLimit, grant?: Grant, waiting?: Waiting) {
    this.calls.push(['settle', key, limit, grant, waiting]);
    const next = this.reopens.shift();
    return next === undefined
      ? Promise.reject(new Error('no reopen scripted'))
      : Promise.resolve({ reopenInMs: next });
  }

  pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    this.calls.push(['pause', key, limit, ms]);
    return Promise.resolve();
  }

  charge(key: string, limit: BucketLimit, count: number): Promise<void> {
    this.calls.push(['charge', key, limit, count]);
    return Promise.resolve();
  }

  peek(): Promise<{ tokens: number; cooldownMs: number }> {
    return Promise.resolve({ tokens: 0, cooldownMs: 0 });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** 10/s: one token every 100 ms. The clock starts at 1000, so `now` and `0` differ. */
function setup(limit: BucketLimit = { ratePerSec: 10, burst: 1 }) {
  const clock = new ManualClock(1_000);
  const limiter = new ScriptedLimiter();
  const observed: [boolean, number][] = [];
  let wakes = 0;
  const b = new Budget('batch', 'u|app|batch', limit, {
    limiter,
    clock,
    leaseMs: LEASE_MS,
    observe: (granted, waitMs) => observed.push([granted, waitMs]),
    wake: () => wakes++,
  });
  return { clock, limiter, b, observed, limit, wakes: () => wakes };
}

const denial = (retryAfterMs: number): Decision => ({ granted: false, remaining: 0, retryAfterMs });
const grant = (remaining: number, settleAfterMs = 0): Decision => ({
  granted: true,
  remaining,
  settleAfterMs,
  grant: lease,
});
const waiting: Waiting = { waitedMs: 7 };

describe('Budget: a denial', () => {
  it('leaves no tokens from now, asks again within one interval, and reports the wait', async () => {
    const { clock, limiter, b, observed, limit } = setup({ ratePerSec: 10, burst: 4 });
    expect(b.tokensAt(1_000)).toBe(4);
    limiter.decisions.push(denial(300));
    expect(await b.acquire(waiting)).toEqual(denial(300));
    expect(limiter.calls).toEqual([['acquire', 'u|app|batch', limit, LEASE_MS, waiting]]);
    expect(observed).toEqual([[false, 300]]);
    expect(b.tokensAt(1_000)).toBe(0);
    expect(b.tokensAt(1_150)).toBe(1.5);
    expect(b.blockedUntil).toBe(1_100);
    expect(b.isOpen(1_099)).toBe(false);
    expect(b.isOpen(1_100)).toBe(true);
    // A wait within a lease may end sooner (a lease released): not surely closed.
    expect(b.closedUntil).toBe(0);
    await clock.advance(100);
    limiter.decisions.push(denial(40));
    await b.acquire(waiting);
    expect(b.blockedUntil).toBe(1_140); // a wait shorter than the poll is the poll
  });

  it('is surely closed for a wait longer than the lease, not for one equal to it, until a grant', async () => {
    const { limiter, b } = setup();
    limiter.decisions.push(denial(LEASE_MS));
    await b.acquire(waiting);
    expect(b.closedUntil).toBe(0);
    limiter.decisions.push(denial(LEASE_MS + 1));
    await b.acquire(waiting);
    expect(b.closedUntil).toBe(1_000 + LEASE_MS + 1);
    expect(b.blockedUntil).toBe(1_100); // still asks again after an interval
    limiter.decisions.push(grant(1));
    await b.acquire(waiting);
    expect(b.closedUntil).toBe(0);
  });

  it('polls no sooner than 20 ms when the interval is shorter', async () => {
    const { limiter, b } = setup({ ratePerSec: 100, burst: 1 });
    limiter.decisions.push(denial(300));
    await b.acquire(waiting);
    expect(b.blockedUntil).toBe(1_020);
    limiter.decisions.push(denial(15));
    await b.acquire(waiting);
    expect(b.blockedUntil).toBe(1_015);
  });
});

describe('Budget: a grant', () => {
  it('keeps the bucket open while tokens are left, and reports no wait', async () => {
    const { limiter, b, observed } = setup({ ratePerSec: 10, burst: 4 });
    limiter.decisions.push(grant(2, 1_000));
    expect(await b.acquire(waiting)).toEqual(grant(2, 1_000));
    expect(observed).toEqual([[true, 0]]);
    expect(b.blockedUntil).toBe(0);
    expect(b.tokensAt(1_000)).toBe(2);
    expect(b.tokensAt(1_050)).toBe(2.5);
  });

  it('closes an emptied bucket one interval past the queued grants, less the burst tolerance', async () => {
    // Burst 4: a tolerance of 3 intervals (300 ms).
    const { clock, limiter, b } = setup({ ratePerSec: 10, burst: 4 });
    limiter.decisions.push(grant(0, 450));
    await b.acquire(waiting);
    expect(b.blockedUntil).toBe(1_000 + 450 + 100 - 300);
    await clock.advance(1_000);
    limiter.decisions.push(grant(0, 200)); // 200 + 100 − 300 = 0: open again at once
    await b.acquire(waiting);
    expect(b.blockedUntil).toBe(2_000);
    limiter.decisions.push(grant(0, 100)); // below the tolerance: never in the past
    await b.acquire(waiting);
    expect(b.blockedUntil).toBe(2_000);
  });
});

describe('Budget: settle', () => {
  it('comes back when the limiter says, at the latest after one poll, and wakes the pump', async () => {
    const { clock, limiter, b, limit, wakes } = setup();
    limiter.decisions.push(grant(0));
    const d = await b.acquire(waiting);
    await clock.advance(30);
    limiter.reopens.push(50);
    await b.settle(d, waiting);
    expect(limiter.calls.at(-1)).toEqual(['settle', 'u|app|batch', limit, lease, waiting]);
    expect(b.blockedUntil).toBe(1_080);
    expect(wakes()).toBe(1);
    limiter.reopens.push(0);
    await b.settle(d, waiting);
    expect(b.blockedUntil).toBe(1_030);
    limiter.reopens.push(400);
    await b.settle(d, waiting);
    expect(b.blockedUntil).toBe(1_130);
    expect(wakes()).toBe(3);
  });

  it('polls after one interval when the settle fails', async () => {
    const { clock, limiter, b, wakes } = setup();
    limiter.decisions.push(grant(0));
    const d = await b.acquire(waiting);
    await clock.advance(500);
    await b.settle(d, waiting); // nothing scripted: the settle rejects
    expect(b.blockedUntil).toBe(1_600);
    expect(wakes()).toBe(1);
  });

  it('does nothing for a denial: it holds no lease', async () => {
    const { limiter, b, wakes } = setup();
    limiter.decisions.push(denial(300));
    const d = await b.acquire(waiting);
    limiter.reopens.push(0);
    await b.settle(d, waiting);
    expect(limiter.calls.map((c) => c[0])).toEqual(['acquire']);
    expect(b.blockedUntil).toBe(1_100);
    expect(wakes()).toBe(0);
  });
});

describe('Budget: a pause and a reopen notice', () => {
  it('closes here and for the fleet; a shorter later pause does not shorten it', async () => {
    const { clock, limiter, b, limit, wakes } = setup();
    await b.pause(300);
    expect(limiter.calls).toEqual([['pause', 'u|app|batch', limit, 300]]);
    expect(b.blockedUntil).toBe(1_300);
    expect(b.closedUntil).toBe(1_300);
    await clock.advance(100);
    await b.pause(50);
    expect(b.blockedUntil).toBe(1_300);
    expect(b.closedUntil).toBe(1_300);
    await b.pause(400);
    expect(b.closedUntil).toBe(1_500);
    expect(wakes()).toBe(0);
  });

  it('takes a reopen notice as the new time to look, never before a pause ends', async () => {
    const { limiter, b, wakes } = setup();
    limiter.decisions.push(denial(300));
    await b.acquire(waiting);
    b.reopened(40);
    expect(b.blockedUntil).toBe(1_040);
    expect(wakes()).toBe(1);
    b.reopened(250); // later than the poll: the notice wins all the same
    expect(b.blockedUntil).toBe(1_250);
    await b.pause(100);
    b.reopened(0);
    expect(b.blockedUntil).toBe(1_100);
  });

  it('passes a charge to the limiter', async () => {
    const { limiter, b, limit } = setup();
    await b.charge(3);
    expect(limiter.calls).toEqual([['charge', 'u|app|batch', limit, 3]]);
  });
});

describe('Budget.isFresh', () => {
  it('is fresh when open, not surely closed and full, each to the millisecond', async () => {
    const { clock, limiter, b } = setup();
    expect(b.isFresh(1_000)).toBe(true);
    // Full and not closed, but asked to look again only at 1050.
    b.reopened(50);
    expect(b.isFresh(1_049)).toBe(false);
    expect(b.isFresh(1_050)).toBe(true);
    limiter.decisions.push(grant(0));
    await b.acquire(waiting);
    // Blocked until 1100, and the token is back at 1100.
    expect(b.isFresh(1_099)).toBe(false);
    expect(b.isFresh(1_100)).toBe(true);
    await clock.advance(100);
    limiter.decisions.push(denial(LEASE_MS + 900));
    await b.acquire(waiting);
    // Open at 1200 and full at 1200, but surely closed until 7000.
    expect(b.isOpen(1_200)).toBe(true);
    expect(b.tokensAt(1_200)).toBe(1);
    expect(b.isFresh(6_999)).toBe(false);
    expect(b.isFresh(7_000)).toBe(true);
  });

  it('is not fresh while the tokens are short of the burst, open or not', async () => {
    const { limiter, b } = setup({ ratePerSec: 10, burst: 4 });
    limiter.decisions.push(grant(2));
    await b.acquire(waiting);
    expect(b.isOpen(1_000)).toBe(true);
    expect(b.isFresh(1_199)).toBe(false);
    expect(b.isFresh(1_200)).toBe(true);
  });

  it('is not fresh while paused', async () => {
    const { b } = setup();
    await b.pause(300);
    expect(b.isFresh(1_299)).toBe(false);
    expect(b.isFresh(1_300)).toBe(true);
  });
});
