// Property tests (SPEC §4, §5): over random interleavings of reads and writes from several
// credentials, against an upstream that runs each batch's ops in a random order,
//  - per resource, conflicting ops execute in arrival order,
//  - no op ever runs under another caller's credential,
//  - every caller gets its own answer.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpRequest, UpstreamRequest } from '../dialect/dialect.js';
import { talkjs } from '../dialect/talkjs.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import type { BufferedResponse } from '../upstream/client.js';
import { pathPrefixes } from './resources.js';
import { Scheduler, type UpstreamTransport } from './scheduler.js';

type RawOp = [number, string, string, unknown?];
interface Executed {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly credential: string | undefined;
}

/** Runs ops in a random order (from the property's seed) and echoes each op's id back. */
class ShufflingUpstream implements UpstreamTransport {
  readonly executed: Executed[] = [];
  constructor(private readonly random: () => number) {}

  async call(request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse> {
    await Promise.resolve();
    const ops: Array<{ seq: number; method: string; path: string; id: string }> = [];
    if (request.path.endsWith('/batch')) {
      for (const [seq, method, path, payload] of JSON.parse(request.body ?? '[]') as RawOp[]) {
        ops.push({ seq, method, path, id: idOf(method, payload) });
      }
    } else {
      const path = request.path.replace(/^\/v1\/[^/]+/, '').replace(/\?.*$/, '');
      const query = new URLSearchParams(request.path.split('?')[1] ?? '');
      const id =
        request.method === 'GET'
          ? (query.get('id') ?? '')
          : (JSON.parse(request.body ?? '{}') as { id: string }).id;
      ops.push({ seq: 0, method: request.method, path, id });
    }
    for (let i = ops.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [ops[i], ops[j]] = [ops[j] as (typeof ops)[number], ops[i] as (typeof ops)[number]];
    }
    for (const op of ops)
      this.executed.push({ id: op.id, method: op.method, path: op.path, credential: authorization });
    const body = request.path.endsWith('/batch')
      ? ops.map((op) => [op.seq, 200, { id: op.id }])
      : { id: ops[0]?.id };
    return { status: 200, headers: {}, body: JSON.stringify(body) };
  }
}

function idOf(method: string, payload: unknown): string {
  if (method === 'GET') return (payload as { id?: string }).id ?? '';
  return (payload as { id: string }).id;
}

const PATHS = [
  '/users/u1',
  '/users/u2',
  '/conversations/c1',
  '/conversations/c1/messages',
  '/conversations/c2',
];
const CREDENTIALS = ['key-a', 'key-b', 'key-c'];

const callArb = fc.record({
  method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE' as const),
  path: fc.constantFrom(...PATHS),
  credential: fc.constantFrom(...CREDENTIALS),
  gap: fc.integer({ min: 0, max: 3 }), // ms before the next arrival
});

function conflicts(a: Executed, b: Executed): boolean {
  if (a.method === 'GET' && b.method === 'GET') return false;
  return pathPrefixes(a.path).includes(b.path) || pathPrefixes(b.path).includes(a.path);
}

describe('Scheduler properties', () => {
  it('keeps arrival order per resource, credential isolation and one own answer per caller', async () => {
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
          const scheduler = new Scheduler({
            dialect: talkjs,
            limiter: new MemoryLimiter(),
            upstream,
            upstreamId: 'prop',
            windowMs: 2,
            maxOps: 10,
            maxWaitMs: 10_000,
            queueMaxOps: 10_000,
            // A tight batch bucket with a single lane makes both lanes carry ops in one run.
            batchLimit: restLane ? { ratePerSec: 50, burst: 1 } : { ratePerSec: 10_000, burst: 10_000 },
            restLimit: restLane ? { ratePerSec: 1_000, burst: 5 } : undefined,
            batchOpsSpendRest: false,
            singleOpDirect: false,
            maxAttempts: 3,
            leaseMs: 1_000,
            authorize: (_app, credential) => credential,
            random,
          });

          const arrival: Executed[] = [];
          const answers: Array<Promise<void>> = [];
          for (const [i, call] of calls.entries()) {
            const id = `op${i}`;
            const op: OpRequest =
              call.method === 'GET'
                ? { method: 'GET', path: call.path, query: { id }, body: undefined, apiVersion: undefined }
                : {
                    method: call.method,
                    path: call.path,
                    query: {},
                    body: JSON.stringify({ id }),
                    apiVersion: undefined,
                  };
            arrival.push({ id, method: call.method, path: call.path, credential: call.credential });
            answers.push(
              scheduler.submit({ appId: 'app', credential: call.credential, op }).then((answer) => {
                if (answer.kind !== 'result') throw new Error(`${id} got ${answer.error.code}`);
                // A collapsed read may carry the id of the identical read it joined: same path, query aside.
                const got = (JSON.parse(answer.body) as { id: string }).id;
                if (call.method !== 'GET') expect(got).toBe(id);
                else expect(arrival.find((a) => a.id === got)?.path).toBe(call.path);
              }),
            );
            if (call.gap > 0) await new Promise((resolve) => setTimeout(resolve, call.gap));
          }
          await Promise.all(answers);

          // Credential isolation: every executed op ran under its own caller's credential.
          const byId = new Map(arrival.map((a) => [a.id, a]));
          for (const e of upstream.executed) expect(e.credential).toBe(byId.get(e.id)?.credential);
          // Every write ran exactly once.
          const writes = arrival.filter((a) => a.method !== 'GET').map((a) => a.id);
          const executedWrites = upstream.executed.filter((e) => e.method !== 'GET').map((e) => e.id);
          expect(executedWrites.sort()).toEqual(writes.sort());
          // Arrival order per resource: for each conflicting pair that both executed, order is kept.
          const position = new Map(upstream.executed.map((e, i) => [e.id, i]));
          for (let i = 0; i < arrival.length; i++) {
            for (let j = i + 1; j < arrival.length; j++) {
              const a = arrival[i] as Executed;
              const b = arrival[j] as Executed;
              const pa = position.get(a.id);
              const pb = position.get(b.id);
              if (pa === undefined || pb === undefined || !conflicts(a, b)) continue;
              expect(
                pa,
                `${a.method} ${a.path} (${a.id}) before ${b.method} ${b.path} (${b.id})`,
              ).toBeLessThan(pb);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
