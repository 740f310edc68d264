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
import { fakeTransport } from '../testing/fake-transport.js';
import { getOp, opOf } from '../testing/ops.js';
import { seededRandom, shuffled } from '../testing/random.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { conflicts, expectArrivalOrder } from './ordering.case.js';
import { Scheduler, type UpstreamTransport } from './scheduler.js';

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
function shufflingUpstream(random: () => number) {
  const executed: Executed[] = [];
  const upstream = fakeTransport();
  upstream.order = (ops) => shuffled(ops, random);
  upstream.answerOp = (op, { authorization }) => {
    if (op.method === 'GET') {
      const seen = executed
        .filter(
          (e) =>
            e.id !== undefined &&
            conflicts(e, { id: undefined, method: op.method, path: op.path, credential: undefined }),
        )
        .map((e) => e.id as string);
      executed.push({ id: undefined, method: op.method, path: op.path, credential: authorization });
      const answer: ReadAnswer = {
        read: op.path,
        query: op.body as Record<string, string>,
        auth: authorization,
        seen,
      };
      return { status: 200, body: answer };
    }
    const { id } = op.body as { id: string };
    executed.push({ id, method: op.method, path: op.path, credential: authorization });
    return { status: 200, body: { id } };
  };
  // Each call answered a turn later than it arrived, as over a wire.
  const transport: UpstreamTransport = {
    call: async (...args) => {
      await Promise.resolve();
      return upstream.call(...args);
    },
  };
  return { transport, executed };
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
          const random = seededRandom(seed);
          const { transport: upstream, executed } = shufflingUpstream(random);
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
            const op = isRead ? getOp(call.path, call.query) : opOf(call.method, call.path, { id });
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
          for (const e of executed)
            if (e.id !== undefined) expect(e.credential).toBe(byId.get(e.id)?.credential);
          // Every write ran exactly once.
          const writes = arrival.filter((a) => a.method !== 'GET').map((a) => a.id as string);
          const executedWrites = executed.filter((e) => e.method !== 'GET').map((e) => e.id as string);
          expect(executedWrites.sort()).toEqual(writes.sort());
          // Arrival order per resource between writes (a read's answer above shows which writes ran
          // before it): for each conflicting pair, order is kept.
          expectArrivalOrder(arrival, executed);
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
