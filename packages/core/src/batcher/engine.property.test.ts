// Properties of the whole engine on a manual clock, against an upstream that runs a batch's ops in a
// random order and fails at random (429, 503, a timeout, a 500 after running the ops), while callers
// go away at random: every caller is answered exactly once, per resource the ops run in arrival order
// (every run of an earlier conflicting op before any run of a later one), every op runs under its own
// caller's credential, and nothing is left queued or in flight.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { getOp, opOf } from '../testing/ops.js';
import { seededRandom, shuffled } from '../testing/random.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { expectArrivalOrder } from './ordering.case.js';
import { Scheduler } from './scheduler.js';

type Fault = 'none' | '429' | '503' | 'timeout' | '500-after-run';

interface Run {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly credential: string | undefined;
}

/**
 * Runs a batch's ops in a random order after 1–5 ms, unless `faults` (one per call) fails the call: a
 * 429, a 503, a timeout, or a 500 after running its ops. Each op answers its id (a read's query `id`,
 * a write's body `id`).
 */
function faultyUpstream(clock: ManualClock, random: () => number, faults: Fault[]) {
  const runs: Run[] = [];
  const upstream = fakeTransport(clock);
  upstream.latencyMs = () => 1 + Math.floor(random() * 5);
  upstream.respond = (call) => {
    const fault = faults.shift() ?? 'none';
    if (fault === '429') return { status: 429, headers: { 'retry-after': '0.05' }, body: '{}' };
    if (fault === '503') return { status: 503, headers: {}, body: '{}' };
    if (fault === 'timeout') return new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'timeout');
    if (fault === 'none') return undefined;
    upstream.answerOps(call);
    return { status: 500, headers: {}, body: '{}' };
  };
  upstream.order = (ops) => shuffled(ops, random);
  upstream.answerOp = (op, call) => {
    const { id } = op.body as { id: string };
    runs.push({ id, method: op.method, path: op.path, credential: call.authorization });
    return { status: 200, body: { id } };
  };
  return { upstream, runs };
}

const PATHS = ['/users/u1', '/users/u2', '/conversations/c1', '/conversations/c1/messages'];

const callArb = fc.record({
  method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE' as const),
  path: fc.constantFrom(...PATHS),
  credential: fc.constantFrom('key-a', 'key-b'),
  gap: fc.integer({ min: 0, max: 4 }),
  abortAfter: fc.option(fc.integer({ min: 0, max: 20 }), { freq: 4 }),
});

describe('engine properties on a manual clock', () => {
  it('answers each caller once, keeps per-resource order and credentials, through faults and aborts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(callArb, { minLength: 1, maxLength: 30 }),
        fc.array(fc.constantFrom<Fault>('none', 'none', '429', '503', 'timeout', '500-after-run'), {
          maxLength: 20,
        }),
        fc.boolean(),
        fc.integer(),
        fc.boolean(),
        async (calls, faults, restLane, seed, verified) => {
          const random = seededRandom(seed);
          // Half the runs defer passes to the end of the turn, as the real clock does (Clock.defer).
          const clock = new ManualClock(0, { deferred: (seed & 1) === 1 });
          const { upstream, runs } = faultyUpstream(clock, random, faults);
          let answers = 0;
          let closed = 0;
          let refused = 0;
          const scheduler = new Scheduler(
            schedulerOptions({
              upstream,
              windowMs: 2,
              maxOps: 4,
              maxWaitMs: 5_000,
              batchLimit: restLane ? { ratePerSec: 50, burst: 1 } : { ratePerSec: 1_000, burst: 100 },
              restLimit: restLane ? { ratePerSec: 200, burst: 2 } : undefined,
              maxAttempts: 3,
              leaseMs: 1_000,
              clock,
              random,
              observer: {
                onAnswer: () => answers++,
                // Refused at the door (breaker open): answered at once, not through onAnswer.
                onShed: (e) => {
                  if (e.code === 'PROXY_CIRCUIT_OPEN') refused++;
                },
              },
            }),
          );

          const arrival: Run[] = [];
          const settled: boolean[] = [];
          for (const [i, call] of calls.entries()) {
            const id = `op${i}`;
            const op =
              call.method === 'GET' ? getOp(call.path, { id }) : opOf(call.method, call.path, { id });
            arrival.push({ id, method: call.method, path: call.path, credential: call.credential });
            const abort = new AbortController();
            if (call.abortAfter !== null) clock.setTimeout(() => abort.abort(), call.abortAfter);
            settled.push(false);
            void scheduler
              .submit({ appId: 'app', credential: call.credential, op, signal: abort.signal, verified })
              .then((answer) => {
                settled[i] = true;
                // A caller that went away is answered by the abort itself, not through the observer.
                if (answer.kind === 'error' && answer.error.code === 'PROXY_CLIENT_CLOSED') closed++;
              });
            await clock.advance(call.gap);
          }
          await clock.advance(10_000);

          expect(settled.every(Boolean)).toBe(true);
          // Each caller answered once: by the observer's counts plus the aborts, no more, no less.
          expect(answers + closed + refused).toBe(calls.length);
          expect(scheduler.pending).toBe(0);
          const byId = new Map(arrival.map((a) => [a.id, a]));
          for (const run of runs) expect(run.credential).toBe(byId.get(run.id)?.credential);
          // Per resource: every run of an earlier conflicting op comes before any run of a later one —
          // across credentials when the proxy verified them; else (SPEC §8d: a credential the
          // upstream has not accepted delays nobody but itself) within each credential at least.
          expectArrivalOrder(arrival, runs, undefined, (a, b) => verified || a.credential === b.credential);
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 100) },
    );
  }, 120_000);
});
