// SPEC §7: the upstream counts arrivals, and arrivals jitter. A granted call reaches the upstream at
// any moment between its grant and its answer — a slow proxy loop, a busy network or a busy upstream
// can bunch calls granted far apart. Whatever the delays, an exact GCRA upstream with the same limit
// must admit every call the limiter granted (leased, settled when answered).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BucketState, FULL, gcraAcquire, gcraSettle } from './gcra.js';
import type { BucketLimit } from './limiter.js';

/** The upstream's limiter: exact GCRA on arrival times, no slack (test/fake-upstream/gcra.ts). */
function upstream(limit: BucketLimit) {
  const t = 1000 / limit.ratePerSec;
  const tolerance = (limit.burst - 1) * t;
  let tat = Number.NEGATIVE_INFINITY;
  return (at: number): boolean => {
    const start = Math.max(tat, at);
    if (start - at - tolerance > 1e-6) return false;
    tat = start + t;
    return true;
  };
}

interface Step {
  /** Time from the previous step, in intervals. */
  gap: number;
  /** From grant to arrival, and from arrival to answer, in intervals. */
  toArrival: number;
  toAnswer: number;
}

type Event = { at: number; kind: 'arrive' | 'answer'; call: number };

/** Runs the steps; returns the arrivals the upstream refused (as "call@time"). */
function run(limit: BucketLimit, steps: Step[]): string[] {
  const t = 1000 / limit.ratePerSec;
  const admit = upstream(limit);
  const refused: string[] = [];
  let state: BucketState = FULL;
  const events: Event[] = [];
  let now = 0;
  let calls = 0;
  // Arrivals and answers due by `until`, in time order (an arrival first at a tie: it happened before
  // its answer).
  const drain = (until: number) => {
    events.sort((a, b) => a.at - b.at || (a.kind === 'arrive' ? -1 : 1));
    while (events[0] && events[0].at <= until) {
      const e = events.shift() as Event;
      if (e.kind === 'arrive') {
        if (!admit(e.at)) refused.push(`${e.call}@${e.at.toFixed(1)}`);
      } else state = gcraSettle(state, e.at, limit, { leased: true });
    }
  };
  for (const step of steps) {
    now += step.gap * t;
    drain(now);
    const { decision, state: next } = gcraAcquire(state, now, limit, 60_000);
    state = next;
    if (!decision.granted) continue;
    const call = calls++;
    const arrive = now + step.toArrival * t;
    events.push(
      { at: arrive, kind: 'arrive', call },
      { at: arrive + step.toAnswer * t, kind: 'answer', call },
    );
  }
  drain(Number.POSITIVE_INFINITY);
  return refused;
}

describe('grants against an exact upstream, arrivals delayed anywhere before the answer', () => {
  it('the upstream admits every granted call', () => {
    const limit = fc.record({
      ratePerSec: fc.constantFrom(1, 2, 10, 20),
      burst: fc.integer({ min: 1, max: 5 }),
    });
    // Edges on purpose: grants at a token's exact reopening, a hair apart, or at once; arrivals
    // prompt or a whole interval late.
    const span = (max: number) =>
      fc.oneof(fc.constantFrom(0, 0.02, 1, 1.2), fc.double({ min: 0, max, noNaN: true }));
    const step = fc.record({ gap: span(2), toArrival: span(3), toAnswer: span(2) });
    fc.assert(
      fc.property(limit, fc.array(step, { maxLength: 60 }), (l, steps) => {
        expect(run(l, steps)).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('does not grant a third call at burst 2 while two granted ones may still arrive', () => {
    // Granted at 0 (a token left: no hold), at 50 and at 51 ms: a GCRA-conforming schedule. The
    // first two are slow to arrive; all three land within 8 ms, and an exact upstream with burst 2
    // refuses the third of them.
    const limit = { ratePerSec: 20, burst: 2 };
    expect(
      run(limit, [
        { gap: 0, toArrival: 60 / 50, toAnswer: 0 },
        { gap: 1, toArrival: 5 / 50, toAnswer: 0 },
        { gap: 1 / 50, toArrival: 1 / 50, toAnswer: 0 },
      ]),
    ).toEqual([]);
  });
});
