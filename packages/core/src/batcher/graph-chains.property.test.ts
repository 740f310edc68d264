// Properties of the engine speaking Graph, with serial dependsOn chains, on a manual clock: an
// upstream that runs parallel batches in a random order and chains in order (after a failed request,
// the rest of a chain is 424 and does not run), throttles requests inside a 200 batch at random,
// and fails whole calls at random. Every caller is answered exactly once and never with a 424 (every
// chain is the proxy's), per resource the ops run in arrival order (across credentials: they are
// submitted as verified, trusted at once), each op runs at most once and
// under its own caller's credential, and nothing is left queued or in flight.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpRequest, UpstreamRequest } from '../dialect/dialect.js';
import { graph } from '../dialect/graph.js';
import { ProxyError } from '../errors.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import type { BufferedResponse } from '../upstream/client.js';
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

interface Sent {
  id: string;
  method: string;
  url: string;
  body?: { id: string };
  dependsOn?: string[];
}

class GraphUpstream {
  readonly runs: Run[] = [];
  constructor(
    private readonly clock: ManualClock,
    private readonly random: () => number,
    private readonly faults: Fault[],
    private readonly opFaults: OpFault[],
  ) {}

  call = async (request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse> => {
    await new Promise((r) => this.clock.setTimeout(() => r(undefined), 1 + Math.floor(this.random() * 5)));
    const fault = this.faults.shift() ?? 'none';
    if (fault === '429') return { status: 429, headers: { 'retry-after': '0.05' }, body: '{}' };
    if (fault === '503') return { status: 503, headers: {}, body: '{}' };
    if (fault === 'timeout') throw new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'timeout');
    if (!request.path.endsWith('/$batch')) {
      const path = request.path.replace(/^\/v1\.0/, '').replace(/\?.*$/, '');
      const id =
        request.method === 'GET'
          ? (new URLSearchParams(request.path.split('?')[1] ?? '').get('id') ?? '')
          : (JSON.parse(request.body ?? '{}') as { id: string }).id;
      this.runs.push({ id, method: request.method, path, credential: authorization });
      return { status: 200, headers: {}, body: JSON.stringify({ id }) };
    }
    const { requests } = JSON.parse(request.body ?? '{}') as { requests: Sent[] };
    const serial = requests.some((r) => r.dependsOn);
    const order = requests.map((_, i) => i);
    if (!serial) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [order[i], order[j]] = [order[j] as number, order[i] as number];
      }
    }
    let failed = false;
    const responses = order.map((i) => {
      const r = requests[i] as Sent;
      if (failed) return { id: r.id, status: 424, body: { error: { code: 'FailedDependency' } } };
      const opFault = this.opFaults.shift() ?? 'ok';
      if (opFault === '429') {
        if (serial) failed = true;
        return { id: r.id, status: 429, headers: { 'Retry-After': '0.05' }, body: {} };
      }
      const [path, query] = r.url.split('?');
      const id = r.method === 'GET' ? (new URLSearchParams(query ?? '').get('id') ?? '') : (r.body?.id ?? '');
      this.runs.push({ id, method: r.method, path: path ?? '', credential: authorization });
      if (opFault === '404') {
        if (serial) failed = true;
        return { id: r.id, status: 404, body: { error: { code: 'NotFound' } } };
      }
      return { id: r.id, status: 200, body: { id } };
    });
    return { status: 200, headers: {}, body: JSON.stringify({ responses }) };
  };
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
          let state = seed | 0;
          const random = () => {
            state = (state * 1103515245 + 12345) | 0;
            return ((state >>> 0) % 1_000_000) / 1_000_000;
          };
          // Half the runs defer passes to the end of the turn, as the real clock does (Clock.defer).
          const clock = new ManualClock(0, { deferred: (seed & 1) === 1 });
          const upstream = new GraphUpstream(clock, random, faults, opFaults);
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
            const op: OpRequest =
              call.method === 'GET'
                ? {
                    method: 'GET',
                    path: call.path,
                    query: {},
                    body: undefined,
                    apiVersion: undefined,
                    headers: {},
                    search: `?id=${id}`,
                  }
                : {
                    method: call.method,
                    path: call.path,
                    query: {},
                    body: JSON.stringify({ id }),
                    apiVersion: undefined,
                    headers: { 'content-type': 'application/json' },
                    search: '',
                  };
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
          for (const run of upstream.runs) {
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
          expectArrivalOrder(arrival, upstream.runs, resource);
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 100) },
    );
  }, 120_000);
});
