// Priorities (issue #31, priority.ts): the rule's arithmetic, the planner's choice inside a group and
// across groups, and the engine under 3× overload on a manual clock.

import { describe, expect, it } from 'vitest';
import { fakeTransport } from '../testing/fake-transport.js';
import { pendingOp } from '../testing/pending-op.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { AppState } from './app-state.js';
import { ManualClock } from './clock.js';
import type { Answer, PendingOp } from './op.js';
import { decide, plan } from './planner.js';
import { firstByRank, type Priority, preferredRank, type Rank, rankOf, rankOrder } from './priority.js';
import { Scheduler } from './scheduler.js';

describe('the rule', () => {
  it('ranks high, normal, low; anything else is normal', () => {
    expect([rankOf('high'), rankOf('normal'), rankOf('low'), rankOf(undefined)]).toEqual([0, 1, 2, 1]);
  });

  it('prefers high at 4, normal at 2 and low at 1 grant of every 7, spread out', () => {
    const cycle = Array.from({ length: 7 }, (_, g) => preferredRank(g));
    expect(cycle).toEqual([0, 1, 0, 2, 0, 1, 0]);
    expect(Array.from({ length: 700 }, (_, g) => preferredRank(g)).filter((r) => r === 2)).toHaveLength(100);
    expect(preferredRank(7)).toBe(0);
    expect(preferredRank(10)).toBe(2);
  });

  it('sorts the preferred class first, then by rank', () => {
    expect([0, 1, 2].map((r) => rankOrder(r as Rank, 2))).toEqual([0, 1, -1]);
    expect([0, 1, 2].map((r) => rankOrder(r as Rank, 0))).toEqual([-1, 1, 2]);
  });

  it("takes a flush's best rank, the oldest of it", () => {
    const ops = [{ rank: 2 }, { rank: 1 }, { rank: 1 }, { rank: 2 }] as const;
    expect(firstByRank(ops)).toBe(ops[1]);
    const withHigh = [{ rank: 1 }, { rank: 0 }, { rank: 0 }] as const;
    expect(firstByRank(withHigh)).toBe(withHigh[1]);
    expect(firstByRank([])).toBeUndefined();
  });
});

let seq = 0;
function add(
  app: AppState,
  priority: Priority,
  path: string,
  credential = 'k',
  method: 'GET' | 'PUT' = 'GET',
) {
  const op = pendingOp({ seq: seq++, method, path, credential, appId: app.appId, deadline: 60_000 });
  const ranked: PendingOp = { ...op, rank: rankOf(priority) };
  app.add(ranked);
  return ranked;
}

const params = { windowMs: 0, maxOps: 3, draining: false, holdMs: 0, leadMs: 0 };

describe('the planner', () => {
  it('fills a batch with its group’s high ops first, then normal, then low, sent in arrival order', () => {
    const app = new AppState('a');
    const low = [1, 2, 3].map((u) => add(app, 'low', `/users/${u}`));
    const normal = add(app, 'normal', '/users/4');
    const high = add(app, 'high', '/users/5');
    const [flush] = plan(app, 0, params).flushes;
    expect(flush?.ops).toEqual([low[0], normal, high]);
  });

  it('keeps a high read behind an earlier low write of its resource', () => {
    const app = new AppState('a');
    const write = add(app, 'low', '/users/1', 'k', 'PUT');
    const other = add(app, 'low', '/users/2');
    add(app, 'high', '/users/1');
    const [flush] = plan(app, 0, params).flushes;
    expect(flush?.ops).toEqual([write, other]);
  });

  it('gives the single-call lane the best priority of the group whose turn it is', () => {
    const app = new AppState('a');
    add(app, 'low', '/users/1');
    const high = add(app, 'high', '/users/2');
    const { flushes } = plan(app, 0, params);
    const lanes = {
      batchOpen: false,
      batchClosedForMs: 1_000,
      hasRest: true,
      restOpen: true,
      windowMs: 0,
      singleOpDirect: false,
    };
    expect(decide(flushes, lanes)).toEqual({ kind: 'single', op: high, budget: 'rest' });
  });

  it('serves backlogged groups of each class 4 : 2 : 1 over the cycle, and a class alone every time', () => {
    const app = new AppState('a');
    for (let i = 0; i < 10; i += 1) {
      add(app, 'high', `/h/${i}`, 'kh');
      add(app, 'normal', `/n/${i}`, 'kn');
      add(app, 'low', `/l/${i}`, 'kl');
    }
    const served: string[] = [];
    for (let grant = 0; grant < 7; grant += 1) {
      const [first] = plan(app, 0, { ...params, maxOps: 1 }).flushes;
      if (!first) throw new Error('nothing ready');
      served.push(first.credential);
      app.leave(first.ops);
      app.served(first.credential);
    }
    expect(served).toEqual(['kh', 'kn', 'kh', 'kl', 'kh', 'kn', 'kh']);
    const alone = new AppState('b');
    for (let i = 0; i < 3; i += 1) add(alone, 'low', `/l/${i}`, 'kl');
    add(alone, 'normal', '/n/0', 'kn');
    // Grant 0 prefers high: none ready, so the best class that is goes — normal before low.
    expect(plan(alone, 0, { ...params, maxOps: 1 }).flushes.map((f) => f.credential)).toEqual(['kn', 'kl']);
  });
});

describe('the engine under 3× overload, one batch call a second', () => {
  it("sends a group's high calls within two grants while its low calls still complete", async () => {
    const clock = new ManualClock(0);
    const upstream = fakeTransport(clock);
    const scheduler = new Scheduler(
      schedulerOptions({
        upstream,
        clock,
        windowMs: 5,
        maxWaitMs: 120_000,
        batchLimit: { ratePerSec: 1, burst: 1 },
      }),
    );
    const waits: Record<Priority, number[]> = { high: [], normal: [], low: [] };
    const unanswered = { count: 0 };
    // 30 calls a second for 20 s against 10 ops a second: 1 in 10 high, 3 in 10 low.
    const kinds: Priority[] = [
      'high',
      'normal',
      'normal',
      'low',
      'normal',
      'normal',
      'low',
      'normal',
      'low',
      'normal',
    ];
    for (let tick = 0; tick < 600; tick += 1) {
      const priority = kinds[tick % kinds.length] as Priority;
      const sentAt = clock.now();
      unanswered.count += 1;
      void scheduler
        .submit({
          appId: 'a',
          credential: 'k',
          op: { method: 'GET', path: `/users/${tick}`, query: {}, body: undefined, apiVersion: undefined },
          priority,
        })
        .then((answer: Answer) => {
          unanswered.count -= 1;
          if (answer.kind === 'result') waits[priority].push(clock.now() - sentAt);
        });
      await clock.advance(1_000 / 30);
    }
    await clock.advance(120_000);
    expect(unanswered.count).toBe(0);
    expect(waits.low).toHaveLength(180);
    expect(waits.normal).toHaveLength(360);
    expect(waits.high).toHaveLength(60);
    const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.99) - 1] ?? Infinity;
    expect(p99(waits.high)).toBeLessThanOrEqual(2_000);
    // The lows waited for the backlog: the budget was the limit, not the order.
    expect(p99(waits.low)).toBeGreaterThan(p99(waits.high) * 10);
  });
});
