// Properties of the engine speaking Graph, with serial dependsOn chains, on a manual clock: an
// upstream that runs parallel batches in a random order and chains in order (after a failed request,
// the rest of a chain is 424 and does not run), throttles requests inside a 200 batch at random,
// and fails whole calls at random. Every caller is answered exactly once and never with a 424 (every
// chain is the proxy's), per resource the ops run in arrival order (across credentials: they are
// submitted as verified, trusted at once), each op runs at most once and
// under its own caller's credential, and nothing is left queued or in flight.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { graph } from '../dialect/graph.js';
import { ProxyError } from '../errors.js';
import { fakeTransport, graphWire } from '../testing/fake-transport.js';
import { graphOp } from '../testing/ops.js';
import { seededRandom, shuffled } from '../testing/random.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { expectArrivalOrder } from './ordering.case.js';
import { Scheduler } from './scheduler.js';

type Fault = 'none' | '429' | '503' | 'timeout';
type OpFault = 'ok' | 'ok' | '404' | '429';

interface Run {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly credential: string | undefined;
}

/**
 * Graph after 1–5 ms, unless `faults` (one per call) fails the whole call (429, 503, a timeout). A
 * parallel batch runs in a random order, a serial chain in order (after a failed request the rest is
 * 424 and does not run); `opFaults` (one per batched request) throttles a request (429, not run) or
 * runs it and answers 404. Each request answers its id (a read's query `id`, a write's body `id`).
 */
function graphUpstream(clock: ManualClock, random: () => number, faults: Fault[], opFaults: OpFault[]) {
  const runs: Run[] = [];
  const upstream = fakeTransport(clock, { wire: graphWire });
  upstream.latencyMs = () => 1 + Math.floor(random() * 5);
  upstream.respond = () => {
    const fault = faults.shift() ?? 'none';
    if (fault === '429') return { status: 429, headers: { 'retry-after': '0.05' }, body: '{}' };
    if (fault === '503') return { status: 503, headers: {}, body: '{}' };
    if (fault === 'timeout') return new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'timeout');
    return undefined;
  };
  upstream.order = (ops) => (ops.some((op) => op.dependsOn) ? ops : shuffled(ops, random));
  upstream.answerOp = (op, call) => {
    const opFault = call.lane === 'batch' ? (opFaults.shift() ?? 'ok') : 'ok';
    if (opFault === '429') return { status: 429, headers: { 'Retry-After': '0.05' }, body: {} };
    const [path = '', query] = op.path.split('?');
    const id =
      op.method === 'GET'
        ? (new URLSearchParams(query ?? '').get('id') ?? '')
        : ((op.body as { id?: string } | undefined)?.id ?? '');
    runs.push({ id, method: op.method, path, credential: call.authorization });
    if (opFault === '404') return { status: 404, body: { error: { code: 'NotFound' } } };
    return { status: 200, body: { id } };
  };
  return { upstream, runs };
}

const PATHS = ['/users/u1', '/users/u2', '/me', '/me/messages', '/groups/g1/members'];

const callArb = fc.record({
  method: fc.constantFrom('GET', 'PATCH', 'POST', 'DELETE' as const),
  path: fc.constantFrom(...PATHS),
  credential: fc.constantFrom('Bearer a', 'Bearer b'),
  gap: fc.integer({ min: 0, max: 3 }),
  abortAfter: fc.option(fc.integer({ min: 0, max: 20 }), { freq: 5 }),
});

/** The resource as ordering sees it: `/me` is the caller's own. */
function resource(run: Run): string {
  return run.path === '/me' || run.path.startsWith('/me/') ? `${run.credential}${run.path}` : run.path;
}

describe('graph engine properties with serial chains', () => {
  it('answers each caller once (never 424), keeps per-resource order, runs each op at most once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(callArb, { minLength: 1, maxLength: 30 }),
        fc.array(fc.constantFrom<Fault>('none', 'none', 'none', '429', '503', 'timeout'), { maxLength: 10 }),
        fc.array(fc.constantFrom<OpFault>('ok', 'ok', '404', '429'), { maxLength: 40 }),
        fc.integer(),
        async (calls, faults, opFaults, seed) => {
          const random = seededRandom(seed);
          // Half the runs defer passes to the end of the turn, as the real clock does (Clock.defer).
          const clock = new ManualClock(0, { deferred: (seed & 1) === 1 });
          const { upstream, runs } = graphUpstream(clock, random, faults, opFaults);
          const scheduler = new Scheduler(
            schedulerOptions({
              dialect: graph,
              upstream,
              windowMs: 2,
              maxOps: 6,
              maxWaitMs: 5_000,
              batchLimit: { ratePerSec: 1_000, burst: 100 },
              maxAttempts: 3,
              leaseMs: 1_000,
              breakerFailures: 0,
              clock,
              random,
            }),
          );

          const arrival: Run[] = [];
          const answers: Array<number | string | undefined> = [];
          for (const [i, call] of calls.entries()) {
            const id = `op${i}`;
            const op =
              call.method === 'GET'
                ? graphOp('GET', call.path, { search: `?id=${id}` })
                : graphOp(call.method, call.path, { body: { id } });
            arrival.push({ id, method: call.method, path: call.path, credential: call.credential });
            const abort = new AbortController();
            if (call.abortAfter !== null) clock.setTimeout(() => abort.abort(), call.abortAfter);
            answers.push(undefined);
            void scheduler
              .submit({
                appId: 'v1.0',
                credential: call.credential,
                verified: true,
                op,
                signal: abort.signal,
              })
              .then((answer) => {
                if (answers[i] !== undefined) throw new Error(`op${i} answered twice`);
                answers[i] = answer.kind === 'result' ? answer.status : answer.error.code;
              });
            await clock.advance(call.gap);
          }
          await clock.advance(10_000);

          expect(answers.every((a) => a !== undefined)).toBe(true);
          expect(answers).not.toContain(424);
          // Pauses of 50 ms and short back-offs: nothing is stuck until its 5 s deadline.
          expect(answers).not.toContain('PROXY_DEADLINE_EXCEEDED');
          expect(scheduler.pending).toBe(0);
          const byId = new Map(arrival.map((a) => [a.id, a]));
          const runsOf = new Map<string, number>();
          for (const run of runs) {
            expect(run.credential).toBe(byId.get(run.id)?.credential);
            runsOf.set(run.id, (runsOf.get(run.id) ?? 0) + 1);
          }
          // No whole-call fault here runs anything, so an op runs at most once.
          expect([...runsOf.values()].every((n) => n === 1)).toBe(true);
          // An op answered with the upstream's result ran.
          answers.forEach((a, i) => {
            if (typeof a === 'number') expect(runsOf.get(`op${i}`), `op${i} answered ${a}`).toBe(1);
          });
          // Per resource: every run of an earlier conflicting op comes before any run of a later one.
          expectArrivalOrder(arrival, runs, resource);
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 100) },
    );
  }, 120_000);
});
