// The GCRA arithmetic on states it produces itself (limiter.case.ts runs the limiters through their
// interface; these pin the two edges that interface cannot see: when a bucket may be forgotten, and
// the instant a hold expires).

import { describe, expect, it } from 'vitest';
import { type BucketState, FULL, gcraAcquire, gcraReopenIn, gcraSettle, isFull } from './gcra.js';

// One token every 100 ms.
const one = { ratePerSec: 10, burst: 1 };
const two = { ratePerSec: 10, burst: 2 };

describe('isFull', () => {
  it('is true for a fresh bucket and for one whose TAT is reached, not before', () => {
    expect(isFull(FULL, 0)).toBe(true);
    const { state } = gcraAcquire(FULL, 1_000, two);
    expect(state).toEqual({ tat: 1_100, flying: 0, hold: 0 });
    expect(isFull(state, 1_099)).toBe(false);
    expect(isFull(state, 1_100)).toBe(true);
    expect(isFull(state, 1_101)).toBe(true);
  });

  it('is false while a leased call is flying, its TAT long reached', () => {
    // Burst 2: the leased grant does not empty the bucket, so nothing is held, one call is flying.
    const { state } = gcraAcquire(FULL, 1_000, two, 5_000);
    expect(state).toEqual({ tat: 1_100, flying: 1, hold: 0 });
    expect(isFull(state, 3_000)).toBe(false);
    // Its answer lands: forgettable once the spacing from that answer has passed.
    const settled = gcraSettle(state, 3_000, two, { leased: true });
    expect(settled).toEqual({ tat: 3_100, flying: 0, hold: 0 });
    expect(isFull(settled, 3_099)).toBe(false);
    expect(isFull(settled, 3_100)).toBe(true);
  });

  it('is false while a hold is in force, and true once it has expired', () => {
    const { state } = gcraAcquire(FULL, 1_000, one, 5_000);
    expect(state).toEqual({ tat: 1_100, flying: 1, hold: 6_000 });
    expect(isFull(state, 5_999)).toBe(false);
    // The replicas holding it died: at the hold's end the bucket is a fresh one again.
    expect(isFull(state, 6_000)).toBe(true);
  });
});

describe('a hold that expires', () => {
  it('is gone at exactly its end, with the calls it counted', () => {
    // Burst 1, leased for 1 s: the grant empties the bucket and holds it until 1 000.
    const first = gcraAcquire(FULL, 0, one, 1_000);
    expect(first.state).toEqual({ tat: 100, flying: 1, hold: 1_000 });
    expect(gcraReopenIn(first.state, 999, one)).toBe(1);
    expect(gcraAcquire(first.state, 999, one, 1_000).decision).toEqual({
      granted: false,
      remaining: 0,
      retryAfterMs: 1,
    });
    // Its call was never settled (its replica died). At 1 000 the hold and its count are forgotten:
    // the next leased grant is the only one flying.
    const second = gcraAcquire(first.state, 1_000, one, 1_000);
    expect(second.decision).toMatchObject({ granted: true, remaining: 0 });
    expect(second.state).toEqual({ tat: 1_100, flying: 1, hold: 2_000 });
    // So its answer lifts the new hold: the bucket reopens one interval after that answer.
    const settled = gcraSettle(second.state, 1_050, one, { leased: true });
    expect(settled).toEqual({ tat: 1_150, flying: 0, hold: 0 });
    expect(gcraReopenIn(settled, 1_050, one)).toBe(100);
  });
});

describe('gcraSettle', () => {
  it('spaces from the answer of a call that landed after its hold had expired, counting no one', () => {
    // Burst 1, leased for 1 s: held until 1 000, and the call's answer comes at 1 500, when the hold
    // and its count are already gone. Nothing is flying: the next grant is one interval from then.
    const { state } = gcraAcquire(FULL, 0, one, 1_000);
    const settled = gcraSettle(state, 1_500, one, { leased: true });
    expect(settled).toEqual({ tat: 1_600, flying: 0, hold: 0 });
    expect(gcraReopenIn(settled, 1_500, one)).toBe(100);
  });

  it('spaces from the answer, one interval per call still flying', () => {
    let state: BucketState = FULL;
    for (const now of [0, 0, 0]) state = gcraAcquire(state, now, { ratePerSec: 10, burst: 3 }, 5_000).state;
    expect(state).toEqual({ tat: 300, flying: 3, hold: 5_000 });
    state = gcraSettle(state, 1_000, { ratePerSec: 10, burst: 3 }, { leased: true });
    expect(state).toEqual({ tat: 1_300, flying: 2, hold: 5_000 });
  });
});

describe('a replica that dies with a grant flying', () => {
  it('shuts the bucket for at most one lease from the hold its count rides in: a hold is never renewed', () => {
    const lease = 400;
    // The dead replica's grant, never settled.
    let state = gcraAcquire(FULL, 0, two, lease).state;
    // A survivor: granted while the dead call counts as arriving now; its grant empties the bucket.
    const first = gcraAcquire(state, 0, two, lease);
    expect(first.decision).toMatchObject({ granted: true, remaining: 0 });
    expect(first.state.hold).toBe(400);
    state = gcraSettle(first.state, 10, two, { leased: true });
    // Before the hold's end, within the tolerance, the survivor is granted again: the hold stays at
    // 400 (renewed, the dead count would ride on to 700, then 1 000 …).
    const second = gcraAcquire(state, 300, two, lease);
    expect(second.decision).toMatchObject({ granted: true, remaining: 0 });
    expect(second.state).toEqual({ tat: 500, flying: 2, hold: 400 });
    state = gcraSettle(second.state, 310, two, { leased: true });
    // After the hold's end the dead count is gone: granted one interval after the survivor's answer
    // (510, less the tolerance), counting only its own new grant as flying.
    const after = gcraAcquire(state, 410, two, lease);
    expect(after.decision).toMatchObject({ granted: true, remaining: 0 });
    expect(after.state).toEqual({ tat: 610, flying: 1, hold: 810 });
  });
});

describe('float rounding', () => {
  it('grants at exactly the tolerance, though (now + t) − now comes out above t', () => {
    // 400 ms apart, burst 2: a tolerance of one interval. At this instant (x + 400) − x is
    // 400.00000000000006 in doubles, and the bucket refused with a wait of 1e-13 ms.
    const x = 16_182.951121884615;
    expect(x + 400 - x).toBeGreaterThan(400);
    const limit = { ratePerSec: 2.5, burst: 2 };
    const { decision } = gcraAcquire({ tat: x + 400, flying: 0, hold: 0 }, x, limit);
    expect(decision).toMatchObject({ granted: true, remaining: 0 });
    // One interval on, it refuses for one interval less the rounding, as ever.
    const next = gcraAcquire({ tat: x + 800, flying: 0, hold: 0 }, x, limit).decision;
    expect(next.granted).toBe(false);
    expect(next.granted || next.retryAfterMs).toBeCloseTo(400, 6);
  });

  it('never says −1 remaining for a grant within the tolerance epsilon, and holds the bucket it empties', () => {
    // 100/s, burst 1 (no tolerance): a TAT 5e-7 ms ahead is within EPSILON_MS, so granted, and
    // the next TAT lands 5e-7 ms past one interval: (burst·t − (next − now)) / t floors to −1.
    const limit = { ratePerSec: 100, burst: 1 };
    const now = 1_009.9999995;
    const { decision, state } = gcraAcquire({ tat: 1_010, flying: 0, hold: 0 }, now, limit, 1_000);
    expect(decision).toMatchObject({ granted: true, remaining: 0 });
    // The grant emptied the bucket: held until its call lands, as any emptying leased grant.
    expect(state.hold).toBe(now + 1_000);
  });
});

describe('edges of a denial and of a settle', () => {
  it('waits for calls still flying, not for the tolerance alone, when nothing holds the bucket', () => {
    // Burst 2 (tolerance 100 ms), three leased calls flying, no hold: they count as arriving now.
    const { decision } = gcraAcquire({ tat: 5_000, flying: 3, hold: 0 }, 5_000, two, 1_000);
    expect(decision).toEqual({ granted: false, remaining: 0, retryAfterMs: 200 });
  });

  it('with a hold, waits no longer than the hold or the TAT less the tolerance, whichever is later', () => {
    // Twenty flying (2 s as arrivals), a hold 50 ms on, a TAT 300 ms on: the TAT's 200 ms wins.
    const { decision } = gcraAcquire({ tat: 5_300, flying: 20, hold: 5_050 }, 5_000, two, 1_000);
    expect(decision).toEqual({ granted: false, remaining: 0, retryAfterMs: 200 });
  });

  it('keeps a TAT already further on than the settle would set it', () => {
    const settled = gcraSettle({ tat: 5_000, flying: 1, hold: 0 }, 1_000, two, { leased: true });
    expect(settled).toEqual({ tat: 5_000, flying: 0, hold: 0 });
  });
});
