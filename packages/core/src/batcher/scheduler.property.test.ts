// Property tests (SPEC §4, §5): over random interleavings of reads and writes from several
// credentials the proxy verified (trusted at once: SPEC §8d orders others within their own
// credential until the upstream accepts them — engine.property.test.ts covers both), against an upstream that runs each batch's ops in a random order,
//  - per resource, conflicting ops execute in arrival order,
//  - no op ever runs under another caller's credential,
//  - every caller gets exactly its own answer: a write its own id, a read the state its resource had
//    when it arrived (the writes that came before it), under its own credential — also when it was
//    collapsed into an identical earlier read (reads repeat, so collapsing really happens here).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpRequest, UpstreamRequest } from '../dialect/dialect.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import type { BufferedResponse } from '../upstream/client.js';
import { conflicts, expectArrivalOrder } from './ordering.case.js';
import { Scheduler, type UpstreamTransport } from './scheduler.js';

type RawOp = [number, string, string, unknown?];
interface Executed {
  /** A write's id; reads carry none (identical reads may collapse into one). */
  readonly id: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly credential: string | undefined;
}

interface ReadAnswer {
  readonly read: string;
  readonly query: Record<string, string>;
  readonly auth: string | undefined;
  /** The ids of the writes that touched the read's resource before it ran. */
  readonly seen: string[];
}

/**
 * Runs ops in a random order (from the property's seed). A write answers its id; a read answers
 * which writes to its resource (itself, a parent or a child) ran before it, and the credential.
 */
class ShufflingUpstream implements UpstreamTransport {
  readonly executed: Executed[] = [];
  constructor(private readonly random: () => number) {}

  async call(request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse> {
    await Promise.resolve();
    const ops: Array<{ seq: number; method: string; path: string; payload: unknown }> = [];
    const batch = request.path.endsWith('/batch');
    if (batch) {
      for (const [seq, method, path, payload] of JSON.parse(request.body ?? '[]') as RawOp[]) {
        ops.push({ seq, method, path, payload });
      }
    } else {
      const path = request.path.replace(/^\/v1\/[^/]+/, '').replace(/\?.*$/, '');
      const payload =
        request.method === 'GET'
          ? Object.fromEntries(new URLSearchParams(request.path.split('?')[1] ?? ''))
          : JSON.parse(request.body ?? '{}');
      ops.push({ seq: 0, method: request.method, path, payload });
    }
    for (let i = ops.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [ops[i], ops[j]] = [ops[j] as (typeof ops)[number], ops[i] as (typeof ops)[number]];
    }
    const results: Array<[number, number, unknown]> = [];
    for (const op of ops) {
      if (op.method === 'GET') {
        const seen = this.executed
          .filter((e) => e.id !== undefined && conflicts(e, { ...op, id: undefined, credential: undefined }))
          .map((e) => e.id as string);
        const answer: ReadAnswer = {
          read: op.path,
          query: op.payload as Record<string, string>,
          auth: authorization,
          seen,
        };
        this.executed.push({ id: undefined, method: op.method, path: op.path, credential: authorization });
        results.push([op.seq, 200, answer]);
      } else {
        const id = (op.payload as { id: string }).id;
        this.executed.push({ id, method: op.method, path: op.path, credential: authorization });
        results.push([op.seq, 200, { id }]);
      }
    }
    const body = batch ? results : results[0]?.[2];
    return { status: 200, headers: {}, body: JSON.stringify(body) };
  }
}

const PATHS = [
  '/users/u1',
  '/users/u2',
  '/conversations/c1',
  '/conversations/c1/messages',
  '/conversations/c2',
];
const CREDENTIALS = ['key-a', 'key-b', 'key-c'];
/** Few distinct queries, so identical reads (same credential, path and query) are frequent. */
const QUERIES: Array<Record<string, string>> = [{}, { limit: '5' }];

const callArb = fc.record({
  // Reads weigh double: collapsing needs reads to meet.
  method: fc.constantFrom('GET', 'GET', 'PUT', 'POST', 'DELETE' as const),
  path: fc.constantFrom(...PATHS),
  credential: fc.constantFrom(...CREDENTIALS),
  query: fc.constantFrom(...QUERIES),
  gap: fc.constantFrom(0, 0, 1, 3), // ms before the next arrival
  // 1–3: repeat the method, path and query of the call that many places back, so identical reads
  // meet in the queue (from the same caller, or under this call's own credential); 0: a fresh call.
  again: fc.integer({ min: 0, max: 3 }),
  sameCaller: fc.boolean(),
});

interface CallShape {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  path: string;
  credential: string;
  query: Record<string, string>;
  gap: number;
  again: number;
  sameCaller: boolean;
}

function withRepeats(calls: readonly CallShape[]): CallShape[] {
  const out: CallShape[] = [];
  for (const [i, call] of calls.entries()) {
    const earlier = call.again >= 1 && call.again <= 3 ? out[i - call.again] : undefined;
    const credential = call.sameCaller ? (earlier?.credential ?? call.credential) : call.credential;
    out.push(earlier ? { ...earlier, credential, gap: call.gap } : call);
  }
  return out;
}

describe('Scheduler properties', () => {
  it('keeps arrival order per resource, credential isolation and one own answer per caller', async () => {
    let collapsed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(callArb, { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        fc.integer(),
        async (calls, restLane, seed) => {
          let state = seed | 0;
          const random = () => {
            state = (state * 1103515245 + 12345) | 0;
            return ((state >>> 0) % 1_000_000) / 1_000_000;
          };
          const upstream = new ShufflingUpstream(random);
          const scheduler = new Scheduler(
            schedulerOptions({
              upstream,
              // A tight batch bucket with a single lane makes both lanes carry ops in one run.
              batchLimit: restLane ? { ratePerSec: 50, burst: 1 } : { ratePerSec: 10_000, burst: 10_000 },
              restLimit: restLane ? { ratePerSec: 1_000, burst: 5 } : undefined,
              maxAttempts: 3,
              random,
              observer: { onCollapsed: () => collapsed++ },
            }),
          );

          const arrival: Executed[] = [];
          const answers: Array<Promise<void>> = [];
          for (const [i, call] of withRepeats(calls).entries()) {
            const id = `op${i}`;
            const isRead = call.method === 'GET';
            const op: OpRequest = isRead
              ? { method: 'GET', path: call.path, query: call.query, body: undefined, apiVersion: undefined }
              : {
                  method: call.method,
                  path: call.path,
                  query: {},
                  body: JSON.stringify({ id }),
                  apiVersion: undefined,
                };
            const me: Executed = {
              id: isRead ? undefined : id,
              method: call.method,
              path: call.path,
              credential: call.credential,
            };
            // What this caller must get, exactly: a write its own id; a read the writes to its
            // resource that arrived before it (they run first, later ones wait for it), in arrival
            // order, under its own credential.
            const expected: unknown = isRead
              ? ({
                  read: call.path,
                  query: call.query,
                  auth: call.credential,
                  seen: arrival.flatMap((a) => (a.id !== undefined && conflicts(a, me) ? [a.id] : [])),
                } satisfies ReadAnswer)
              : { id };
            arrival.push(me);
            answers.push(
              scheduler
                .submit({ appId: 'app', credential: call.credential, verified: true, op })
                .then((answer) => {
                  if (answer.kind !== 'result') throw new Error(`${id} got ${answer.error.code}`);
                  expect(JSON.parse(answer.body), `${id}: ${call.method} ${call.path}`).toEqual(expected);
                }),
            );
            if (call.gap > 0) await new Promise((resolve) => setTimeout(resolve, call.gap));
          }
          // Every answer checked; the first mismatch fails the run (the others are not left unhandled).
          const failed = (await Promise.allSettled(answers)).find((r) => r.status === 'rejected');
          if (failed) throw failed.reason;

          // Credential isolation: every executed write ran under its own caller's credential.
          const byId = new Map(arrival.filter((a) => a.id !== undefined).map((a) => [a.id, a]));
          for (const e of upstream.executed)
            if (e.id !== undefined) expect(e.credential).toBe(byId.get(e.id)?.credential);
          // Every write ran exactly once.
          const writes = arrival.filter((a) => a.method !== 'GET').map((a) => a.id as string);
          const executedWrites = upstream.executed
            .filter((e) => e.method !== 'GET')
            .map((e) => e.id as string);
          expect(executedWrites.sort()).toEqual(writes.sort());
          // Arrival order per resource between writes (a read's answer above shows which writes ran
          // before it): for each conflicting pair, order is kept.
          expectArrivalOrder(arrival, upstream.executed);
        },
      ),
      // Fewer runs per mutant under Stryker (vitest.mutation.config.ts): it runs this once per mutant.
      { numRuns: Number(process.env.PROPERTY_RUNS) || 100 },
    );
    // The generator makes identical reads meet in the queue, so the exact answers above cover
    // collapsed reads too.
    expect(collapsed).toBeGreaterThan(0);
  }, 60_000);
});
