// A group's pause is the fleet's (SPEC §8d: a throttle pauses what was throttled): two Schedulers —
// two replicas — on one real redis-server, each with its own RedisLimiter. A Graph user throttled
// inside a batch through replica A is held by replica B too, until the pause ends, while another user
// keeps going on both. On the real clock: Redis carries the notice between them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '../dialect/graph.js';
import type { ScopeNotice } from '../ratelimit/limiter.js';
import { RedisLimiter } from '../ratelimit/redis.js';
import { type FakeTransport, fakeTransport, graphWire } from '../testing/fake-transport.js';
import { graphOp } from '../testing/ops.js';
import { type RedisServer, startRedisServer } from '../testing/redis-server.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { realClock } from './clock.js';
import { groupDigest } from './domains.js';
import type { Answer } from './op.js';
import { Scheduler } from './scheduler.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

const U = 'Bearer user-u';
const V = 'Bearer user-v';

async function replica(prefix: string) {
  const limiter = RedisLimiter.connect(server.url, { keyPrefix: prefix });
  await new Promise<void>((resolve) => {
    if (limiter.client.status === 'ready') resolve();
    else limiter.client.once('ready', () => resolve());
  });
  const upstream = fakeTransport(realClock, { wire: graphWire });
  const scheduler = new Scheduler(
    schedulerOptions({
      dialect: graph,
      upstream,
      limiter,
      clock: realClock,
      windowMs: 5,
      maxOps: 20,
      maxWaitMs: 10_000,
      batchLimit: { ratePerSec: 100, burst: 100 },
    }),
  );
  const submit = (credential: string, path: string) => {
    const sentAt = realClock.now();
    return scheduler
      .submit({ appId: 'v1.0', credential, op: graphOp('GET', path) })
      .then((answer: Answer) => ({ answer, ms: realClock.now() - sentAt }));
  };
  /** When the upstream received each call of `credential`. */
  const callsOf = (credential: string) => upstream.calls.filter((c) => c.authorization === credential);
  return { limiter, upstream, scheduler, submit, callsOf };
}

const statusOf = (a: Answer) => (a.kind === 'result' ? a.status : a.error.code);

/** Resolves once `heard` holds a notice, or after `ms` (the notice may never come). */
async function heardOrAfter(heard: ScopeNotice[], ms: number): Promise<void> {
  const until = realClock.now() + ms;
  while (heard.length === 0 && realClock.now() < until) await new Promise((r) => setTimeout(r, 2));
}

describe('Graph fleet: a user’s pause is shared through the limiter', () => {
  it('a user throttled through replica A sends nothing through replica B until the pause ends; another user goes on', async () => {
    const prefix = `fleet-pause:${Date.now()}:`;
    const a = await replica(prefix);
    const b = await replica(prefix);
    try {
      // A: U's first op is throttled inside a 200 batch, Retry-After 2 s; everything else is served.
      let throttledOnce = false;
      a.upstream.answerOp = (op, call) => {
        if (call.authorization === U && !throttledOnce) {
          throttledOnce = true;
          return { status: 429, headers: { 'Retry-After': '2' } };
        }
        return { status: 200, body: { path: op.path } };
      };
      const heard: ScopeNotice[] = [];
      b.limiter.onShared((n) => heard.push(n));

      // Both replicas listen (as they do from start-up on): the notice is not lost to a subscribe under way.
      const listening = realClock.now() + 1_000;
      while (realClock.now() < listening) {
        const [, n] = (await b.limiter.client.pubsub('NUMSUB', `${prefix}shared`)) as [string, number];
        if (n >= 2) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const first = a.submit(U, '/me');
      await heardOrAfter(heard, 1_000);
      const throttledAt = (a.callsOf(U)[0] as FakeTransport['calls'][number]).at;

      // During U's pause: U through B, V through both.
      const uOnB = b.submit(U, '/me/messages');
      const vOnB = b.submit(V, '/me');
      const vOnA = a.submit(V, '/me/events');
      for (const v of [await vOnB, await vOnA]) {
        expect(statusOf(v.answer)).toBe(200);
        expect(v.ms).toBeLessThan(1_000);
      }
      const u = await uOnB;
      expect(statusOf(u.answer)).toBe(200);
      expect(statusOf((await first).answer)).toBe(200);
      // B sent nothing of U's before A's pause ended (Retry-After 2 s from A's 429).
      const uCallsOnB = b.callsOf(U).map((c) => c.at - throttledAt);
      expect(uCallsOnB.length).toBeGreaterThan(0);
      for (const at of uCallsOnB) expect(at).toBeGreaterThanOrEqual(1_999);
      // V was not held: its call left B at once.
      expect((b.callsOf(V)[0]?.at ?? Number.POSITIVE_INFINITY) - throttledAt).toBeLessThan(1_500);
      // What went between them: U's digest, never U's credential; A's pause and pace, relative.
      expect(heard).toEqual([
        { appId: 'v1.0', group: groupDigest(U), pauseMs: expect.any(Number), paceMs: 1_000 },
      ]);
      expect(heard[0]?.pauseMs).toBeGreaterThan(1_500);
      expect(heard[0]?.pauseMs).toBeLessThanOrEqual(2_000);
    } finally {
      await Promise.all([a.scheduler.drain(), b.scheduler.drain()]);
      await Promise.all([a.limiter.close(), b.limiter.close()]);
    }
  });
});
