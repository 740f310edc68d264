// Properties of the op state machine and the planner over random sequences of arrivals, departures,
// requeues and answers: the counts always equal a recount, no op is answered twice, a parked op
// always waits behind an earlier unanswered op it conflicts with, and a planned batch holds only
// eligible ops of one credential.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { AppState } from './app-state.js';
import type { PendingOp } from './op.js';
import { plan } from './planner.js';
import { pathPrefixes } from './resources.js';

const PATHS = ['/users/u1', '/users/u1/', '/conversations/c1', '/conversations/c1/messages', '/users/u2'];

const stepArb = fc.oneof(
  fc.record({
    kind: fc.constant('add' as const),
    method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE' as const),
    path: fc.constantFrom(...PATHS),
    credential: fc.constantFrom('k1', 'k2'),
  }),
  fc.record({ kind: fc.constantFrom('leave', 'requeue', 'finish' as const), pick: fc.nat() }),
);

function conflicts(a: PendingOp, b: PendingOp): boolean {
  if (!a.isWrite && !b.isWrite) return false;
  return pathPrefixes(a.op.path).includes(b.resource) || pathPrefixes(b.op.path).includes(a.resource);
}

describe('AppState and the planner', () => {
  it('keep counts, states and parking consistent under any sequence', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80 }), (steps) => {
        const app = new AppState('app');
        const all: PendingOp[] = [];
        const answered = new Map<PendingOp, number>();
        let seq = 0;
        for (const step of steps) {
          const queued = all.filter((o) => o.state === 'queued');
          const flying = all.filter((o) => o.state === 'inflight');
          if (step.kind === 'add') {
            const op = pendingOp({
              seq: seq++,
              method: step.method,
              path: step.path,
              credential: step.credential,
              enqueuedAt: seq,
              deadline: 1_000_000,
            });
            op.waiters.push({ arrivedAt: seq, spanContext: undefined, resolve: () => {} });
            all.push(op);
            app.add(op);
          } else if (step.kind === 'leave') {
            // Only what the planner offers may leave: that is the engine's contract.
            const flushes = plan(app, seq, {
              windowMs: 0,
              maxOps: 3,
              draining: false,
              holdMs: 0,
              leadMs: 0,
            }).flushes;
            const flush = flushes[step.pick % Math.max(1, flushes.length)];
            if (flush) {
              expect(new Set(flush.ops.map((o) => o.credential)).size).toBe(1);
              for (const op of flush.ops) {
                expect(op.parked).toBe(false);
                expect(app.index.isBlocked(op)).toBe(false);
              }
              app.leave(flush.ops);
            }
          } else if (step.kind === 'requeue') {
            const op = flying[step.pick % Math.max(1, flying.length)];
            if (op) expect(app.requeue(op, { notBefore: 0, refundAttempt: false })).toBe(true);
          } else {
            const pool = [...queued, ...flying];
            const op = pool[step.pick % Math.max(1, pool.length)];
            if (op) answered.set(op, (answered.get(op) ?? 0) + app.finish(op).length);
            if (op) expect(app.finish(op)).toEqual([]);
          }
          expect(app.counts).toEqual(app.recount());
          expect(app.counts.queued).toBe(all.filter((o) => o.state === 'queued').length);
          expect(app.counts.inflight).toBe(all.filter((o) => o.state === 'inflight').length);
          expect(app.index.size).toBe(all.filter((o) => o.state !== 'done').length);
          for (const op of all.filter((o) => o.parked && o.state === 'queued')) {
            const before = all.filter((o) => o.seq < op.seq && o.state !== 'done' && conflicts(o, op));
            expect(before.length, `op ${op.seq} parked behind nothing`).toBeGreaterThan(0);
          }
        }
        for (const [, times] of answered) expect(times).toBe(1);
        expect(app.isIdle).toBe(all.every((o) => o.state === 'done'));
      }),
      { numRuns: 300 },
    );
  });
});
