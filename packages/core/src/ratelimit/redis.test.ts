// The Redis limiter against a real redis-server: conformance, the Lua arithmetic checked against
// gcra.ts at the bucket edges and on random sequences, sharing between replicas, and the wire cost.

import { once } from 'node:events';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../testing/redis-server.js';
import {
  type BucketState,
  FULL,
  gcraAcquire,
  gcraCharge,
  gcraPause,
  gcraPeek,
  gcraReopenIn,
  gcraSettle,
} from './gcra.js';
import { describeLimiterConformance } from './limiter.case.js';
import type { BucketLimit, Decision, Grant, PaceReport, ScopeNotice } from './limiter.js';
import { MemoryLimiter } from './memory.js';
import { PACE_PARAMS } from './pace.case.js';
import { paceArg } from './pace.js';
import { RedisLimiter } from './redis.js';
import { commandName, scripts } from './scripts.js';

let server: RedisServer;
/** A plain client for looking at what the limiter left in Redis. */
let admin: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  for (const script of scripts.values()) {
    admin.defineCommand(commandName(script.name), { lua: script.lua, numberOfKeys: script.numberOfKeys });
  }
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

/** A limiter with the production client options, once its connection is ready. */
async function connected(keyPrefix?: string): Promise<RedisLimiter> {
  const limiter = RedisLimiter.connect(server.url, keyPrefix === undefined ? {} : { keyPrefix });
  if (limiter.client.status !== 'ready') await once(limiter.client, 'ready');
  return limiter;
}

describeLimiterConformance('RedisLimiter', () => connected(), { slackMs: 2 });

/** What one script call carries besides the op and its instant (see each script's argument list). */
interface CallArgs {
  ms?: number;
  grant?: Grant;
  replica?: string;
  /** Undefined: '' (nothing waiting). */
  waitedMs?: number;
  graceMs?: number;
}

/**
 * The scripts on one bucket, called with the test-only clock argument so the arithmetic is checked at
 * exact instants.
 */
function scriptBucket(key: string, limit: BucketLimit) {
  const client = admin as unknown as Record<string, (...args: string[]) => Promise<unknown>>;
  const run = (name: 'acquire' | 'settle' | 'pause' | 'charge' | 'peek', keys: string[], args: string[]) =>
    (client[commandName(name)] as (...a: string[]) => Promise<unknown>).call(
      client,
      ...keys,
      String(limit.ratePerSec),
      String(limit.burst),
      ...args,
    );
  const both = [key, `${key}:turns`, `${key}:pace`];
  const own = [key, `${key}:pace`];
  return (op: 'acquire' | 'settle' | 'pause' | 'charge' | 'peek', now: number, args: CallArgs = {}) => {
    const at = String(now);
    const replica = args.replica ?? '';
    const waited = args.waitedMs === undefined ? '' : String(args.waitedMs);
    switch (op) {
      case 'acquire':
        return run(op, both, [String(args.ms ?? 0), at, replica, waited, String(args.graceMs ?? 0)]);
      case 'settle':
        return run(op, both, [at, args.grant?.leased ? '1' : '', '', replica, waited]);
      case 'pause':
      case 'charge':
        return run(op, own, [String(args.ms ?? 0), at]);
      case 'peek':
        return run(op, own, [at]);
    }
  };
}

describe('the Lua scripts at exact instants', () => {
  let keys = 0;
  const N = 1_700_000_000_123; // an epoch in ms; the random sequences add fractions, as TIME gives

  const bucket = (limit: BucketLimit) => {
    const call = scriptBucket(`edge:${keys++}`, limit);
    return {
      acquire: async (now: number, leaseMs = 0) => toDecision(await call('acquire', now, { ms: leaseMs })),
      peek: async (now: number) => {
        const [tokens, cooldownMs] = (await call('peek', now)) as [number, string];
        return { tokens, cooldownMs: Number(cooldownMs) };
      },
      settle: async (now: number, grant?: Grant) => {
        const [stored, reopen] = (await call('settle', now, grant ? { grant } : {})) as [string, string];
        return { state: toState(stored), reopenInMs: Number(reopen) };
      },
      charge: async (now: number, count: number) => toState(await call('charge', now, { ms: count })),
      pause: async (now: number, ms: number) => toState(await call('pause', now, { ms })),
    };
  };

  it('grants a full burst at one instant, then denies for one interval', async () => {
    const b = bucket({ ratePerSec: 1, burst: 3 });
    expect(await b.acquire(N)).toMatchObject({ granted: true, remaining: 2, settleAfterMs: 0 });
    expect(await b.acquire(N)).toMatchObject({ granted: true, remaining: 1, settleAfterMs: 1000 });
    expect(await b.acquire(N)).toMatchObject({ granted: true, remaining: 0, settleAfterMs: 2000 });
    expect(await b.acquire(N)).toEqual({ granted: false, remaining: 0, retryAfterMs: 1000 });
  });

  it('refills exactly one token per interval, the edge included', async () => {
    const b = bucket({ ratePerSec: 1, burst: 3 });
    for (let i = 0; i < 3; i++) await b.acquire(N);
    expect(await b.acquire(N + 999.5)).toEqual({ granted: false, remaining: 0, retryAfterMs: 0.5 });
    expect(await b.acquire(N + 1000)).toMatchObject({ granted: true, remaining: 0 });
    expect(await b.acquire(N + 1000)).toMatchObject({ granted: false, retryAfterMs: 1000 });
    expect(await b.peek(N + 5000)).toEqual({ tokens: 3, cooldownMs: 0 });
    expect(await b.acquire(N + 5000)).toMatchObject({ granted: true, remaining: 2 });
  });

  it('keeps fractional intervals exact (rate 3/s)', async () => {
    const b = bucket({ ratePerSec: 3, burst: 1 });
    await b.acquire(N);
    const expected = gcraAcquire({ tat: N + 1000 / 3, flying: 0, hold: 0 }, N, {
      ratePerSec: 3,
      burst: 1,
    }).decision;
    expect(expected).toMatchObject({ granted: false });
    expect(await b.acquire(N)).toMatchObject(expected);
  });

  it('cools down for the pause, then grants exactly one token', async () => {
    const b = bucket({ ratePerSec: 1, burst: 3 });
    await b.pause(N, 5000);
    expect(await b.peek(N)).toEqual({ tokens: 0, cooldownMs: 5000 });
    expect(await b.acquire(N + 4999)).toEqual({ granted: false, remaining: 0, retryAfterMs: 1 });
    expect(await b.acquire(N + 5000)).toMatchObject({ granted: true, remaining: 0 });
    expect(await b.acquire(N + 5000)).toEqual({ granted: false, remaining: 0, retryAfterMs: 1000 });
  });

  it('never says −1 remaining for a grant within the tolerance epsilon (gcra.ts: the same)', async () => {
    // Small instants, where a double resolves 5e-7 ms: the second acquire is 5e-7 ms early.
    const b = bucket({ ratePerSec: 100, burst: 1 });
    expect(await b.acquire(1_000, 1_000)).toMatchObject({ granted: true, remaining: 0 });
    await b.settle(1_000, { leased: true });
    const expected = gcraAcquire({ tat: 1_010, flying: 0, hold: 0 }, 1_009.9999995, {
      ratePerSec: 100,
      burst: 1,
    }).decision;
    expect(expected).toMatchObject({ granted: true, remaining: 0 });
    expect(await b.acquire(1_009.9999995, 1_000)).toMatchObject({ granted: true, remaining: 0 });
    // Emptied and held under its lease: denied until it is settled.
    expect(await b.acquire(1_020)).toMatchObject({ granted: false });
  });

  it('settles one interval from the answer, never earlier than the bucket already was', async () => {
    const b = bucket({ ratePerSec: 1, burst: 1 });
    await b.acquire(N);
    expect((await b.settle(N + 700)).reopenInMs).toBe(1000);
    expect(await b.acquire(N + 1000)).toEqual({ granted: false, remaining: 0, retryAfterMs: 700 });
    await b.pause(N + 1000, 3000);
    expect((await b.settle(N + 1000)).reopenInMs).toBe(3000);
    expect(await b.peek(N + 1000)).toEqual({ tokens: 0, cooldownMs: 3000 });
  });

  it('computes what gcra.ts computes, on random sequences', async () => {
    const limitArb = fc.record({
      ratePerSec: fc.oneof(
        fc.constantFrom(1, 3, 9, 0.5, 1000 / 7),
        fc.double({ min: 0.01, max: 500, noNaN: true }),
      ),
      burst: fc.oneof(fc.constantFrom(1, 2, 500, 600), fc.integer({ min: 1, max: 1000 })),
    });
    const stepArb = fc.record({
      op: fc.constantFrom('acquire', 'acquire', 'acquire', 'settle', 'settle', 'pause', 'charge', 'peek'),
      dt: fc.oneof(
        fc.constant(0),
        fc.double({ min: 0, max: 3000, noNaN: true }),
        fc.integer({ min: 0, max: 200 }),
      ),
      ms: fc.double({ min: 0, max: 10_000, noNaN: true }),
      leaseMs: fc.constantFrom(0, 0, 50, 5_000),
      /** Which earlier grant a settle reports (-1: none). */
      pick: fc.integer({ min: -1, max: 5 }),
    });
    await fc.assert(
      fc.asyncProperty(limitArb, fc.array(stepArb, { maxLength: 40 }), async (limit, steps) => {
        const b = bucket(limit);
        let state: BucketState = FULL;
        let now = N + 0.456;
        // Each backend settles its own grants (a lease is named by a decimal each side prints).
        const grants: Array<{ lua: Grant; ts: Grant }> = [];
        for (const step of steps) {
          now += step.dt;
          if (step.op === 'acquire') {
            const expected = gcraAcquire(state, now, limit, step.leaseMs);
            const got = await b.acquire(now, step.leaseMs);
            expect(got).toEqual(expected.decision);
            if (got.granted && expected.decision.granted) {
              grants.push({ lua: got.grant, ts: expected.decision.grant });
            }
            state = expected.state;
          } else if (step.op === 'settle') {
            const grant = step.pick < 0 ? undefined : grants[grants.length - 1 - step.pick];
            state = gcraSettle(state, now, limit, grant?.ts);
            expect(await b.settle(now, grant?.lua)).toEqual({
              state,
              reopenInMs: gcraReopenIn(state, now, limit),
            });
          } else if (step.op === 'charge') {
            const count = step.pick + 2;
            state = gcraCharge(state, now, limit, count);
            expect(await b.charge(now, count)).toEqual(state);
          } else if (step.op === 'pause') {
            state = gcraPause(state, now, limit, step.ms);
            expect(await b.pause(now, step.ms)).toEqual(state);
          } else {
            expect(await b.peek(now)).toEqual(gcraPeek(state, now, limit));
          }
        }
      }),
      { numRuns: 80 },
    );
  });
});

describe("the Lua scripts' turns: replicas served in their oldest ops' arrival order", () => {
  let keys = 0;
  const N = 1_700_000_000_000;
  const GRACE = 5;

  /** One grant per 50 ms unless told otherwise. */
  const bucket = (limit: BucketLimit = { ratePerSec: 20, burst: 1 }) => {
    const key = `turns:${keys++}`;
    const call = scriptBucket(key, limit);
    return {
      acquire: async (now: number, replica: string, waitedMs: number) =>
        toDecision(await call('acquire', now, { replica, waitedMs, graceMs: GRACE })),
      settle: (now: number, replica: string, waitedMs?: number) =>
        call('settle', now, waitedMs === undefined ? { replica } : { replica, waitedMs }),
      queue: () => admin.zrange(`${key}:turns`, '0', '-1'),
    };
  };

  it('keeps a reopened bucket for the replica with the oldest op, then lets a younger one take it', async () => {
    const b = bucket();
    expect(await b.acquire(N, 'a', 0)).toMatchObject({ granted: true });
    // b's oldest op arrived at N - 30, c's at N + 10: both denied and queued, b first.
    expect(await b.acquire(N + 10, 'c', 0)).toEqual({ granted: false, remaining: 0, retryAfterMs: 40 });
    expect(await b.acquire(N + 20, 'b', 50)).toEqual({ granted: false, remaining: 0, retryAfterMs: 30 });
    expect(await b.queue()).toEqual(['b', 'c']);
    // Not its turn: c would come back at the reopening plus the grace.
    expect(await b.acquire(N + 30, 'c', 20)).toEqual({
      granted: false,
      remaining: 0,
      retryAfterMs: 20 + GRACE,
    });
    // At the reopening c asks first and is told to wait out b's grace; b is granted.
    expect(await b.acquire(N + 50, 'c', 40)).toEqual({ granted: false, remaining: 0, retryAfterMs: GRACE });
    expect(await b.acquire(N + 51, 'b', 81)).toMatchObject({ granted: true, remaining: 0 });
    expect(await b.queue()).toEqual(['c']);
    // c's turn at the next reopening (N + 101): a, with a younger op, is sent behind it.
    expect(await b.acquire(N + 101, 'a', 1)).toEqual({ granted: false, remaining: 0, retryAfterMs: GRACE });
    expect(await b.acquire(N + 102, 'c', 92)).toMatchObject({ granted: true });
    expect(await b.queue()).toEqual(['a']);
  });

  it('skips a replica that does not come within the grace, and drops it from the queue', async () => {
    const b = bucket();
    await b.acquire(N, 'a', 0);
    await b.acquire(N + 1, 'gone', 100);
    await b.acquire(N + 2, 'c', 0);
    expect(await b.queue()).toEqual(['gone', 'c']);
    expect(await b.acquire(N + 50 + GRACE - 0.5, 'c', 0)).toMatchObject({ granted: false });
    expect(await b.acquire(N + 50 + GRACE, 'c', 0)).toMatchObject({ granted: true });
    expect(await b.queue()).toEqual([]);
  });

  it('lets an older op through first even if its replica was never denied', async () => {
    const b = bucket();
    await b.acquire(N, 'a', 0);
    await b.acquire(N + 10, 'c', 0); // c queued with an op from N + 10
    // d has held an op since N - 100 and asks only at the reopening: no need to wait for c.
    expect(await b.acquire(N + 50, 'd', 150)).toMatchObject({ granted: true });
    expect(await b.queue()).toEqual(['c']);
  });

  it('on settle, requeues a replica that still has ops waiting, and drops one that has none', async () => {
    const b = bucket();
    const granted = await b.acquire(N, 'a', 0);
    await b.acquire(N + 10, 'c', 0);
    expect(granted.granted).toBe(true);
    // a's oldest remaining op arrived at N - 5: older than c's, so a stays first.
    await b.settle(N + 20, 'a', 25);
    expect(await b.queue()).toEqual(['a', 'c']);
    await b.settle(N + 21, 'a');
    expect(await b.queue()).toEqual(['c']);
  });

  it('grants out of turn while more than one token is left (burst > 1)', async () => {
    const { acquire } = bucket({ ratePerSec: 20, burst: 3 });
    for (let i = 0; i < 3; i++) await acquire(N, 'a', 0);
    expect(await acquire(N + 1, 'old', 500)).toMatchObject({ granted: false }); // queued, oldest
    // By N + 100 two tokens are back: a younger replica may take one, the last stays old's.
    expect(await acquire(N + 100, 'young', 0)).toMatchObject({ granted: true, remaining: 1 });
    expect(await acquire(N + 100, 'young', 0)).toMatchObject({ granted: false, retryAfterMs: GRACE });
    expect(await acquire(N + 100, 'old', 600)).toMatchObject({ granted: true, remaining: 0 });
  });
});

describe('RedisLimiter in Redis', () => {
  let limiter: RedisLimiter;

  beforeAll(async () => {
    limiter = await connected();
  });
  afterAll(async () => {
    await limiter?.close();
  });

  it('shares a bucket between replicas: two clients get exactly burst grants between them', async () => {
    const other = await connected();
    const limit = { ratePerSec: 0.01, burst: 25 };
    const decisions = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? limiter : other).acquire('replicas', limit)),
    );
    await other.close();
    const remaining = decisions.filter((d) => d.granted).map((d) => d.remaining);
    // Atomic decisions: each remaining count handed out exactly once.
    expect(remaining.sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('makes one round trip per decision: one script call and nothing else', async () => {
    const limit = { ratePerSec: 100, burst: 10 };
    // Each script's source goes over the connection once.
    await limiter.acquire('wire', limit);
    await limiter.settle('wire', limit);
    await limiter.pause('wire', limit, 0);
    await limiter.charge('wire:other', limit, 1);
    await limiter.peek('wire', limit);
    await admin.config('RESETSTAT');
    const calls = 50;
    for (let i = 0; i < calls; i++) await limiter.acquire('wire', limit);
    await limiter.settle('wire', limit);
    await limiter.pause('wire', limit, 10);
    await limiter.charge('wire', limit, 3);
    await limiter.peek('wire', limit);
    const stats = commandStats(await admin.info('commandstats'));
    expect((stats.get('evalsha') ?? 0) + (stats.get('eval') ?? 0)).toBe(calls + 4);
    // Everything else was run by the script itself (or is this test's own INFO).
    expect(
      [...stats.keys()].filter(
        (c) => !['evalsha', 'eval', 'time', 'get', 'set', 'info', 'config|resetstat'].includes(c),
      ),
    ).toEqual([]);
    expect(stats.get('time')).toBe(calls + 4);
  });

  it('recovers the script after SCRIPT FLUSH (NOSCRIPT: the source is sent again)', async () => {
    const limit = { ratePerSec: 0.01, burst: 2 };
    expect(await limiter.acquire('flush', limit)).toMatchObject({ granted: true, remaining: 1 });
    await admin.script('FLUSH');
    expect(await limiter.acquire('flush', limit)).toMatchObject({ granted: true, remaining: 0 });
    expect(await limiter.acquire('flush', limit)).toMatchObject({ granted: false });
  });

  it('stores one key per bucket under the prefix (the name in a hash tag), expiring soon after the bucket is full again', async () => {
    // TTL = time until the bucket is full again (its TAT) + 1 s, rounded up.
    let started = performance.now();
    await limiter.acquire('ttl:fast', { ratePerSec: 1000, burst: 1 });
    const fast = await admin.pttl('batch-proxy:ratelimit:{ttl:fast}');
    expect(fast).toBeGreaterThanOrEqual(1001 - (performance.now() - started) - 1);
    expect(fast).toBeLessThanOrEqual(1002);

    started = performance.now();
    for (let i = 0; i < 5; i++) await limiter.acquire('ttl:slow', { ratePerSec: 0.01, burst: 5 });
    const slow = await admin.pttl('batch-proxy:ratelimit:{ttl:slow}');
    expect(slow).toBeGreaterThanOrEqual(501_000 - (performance.now() - started) - 1);
    expect(slow).toBeLessThanOrEqual(501_002);

    await limiter.peek('ttl:peeked', { ratePerSec: 1, burst: 1 });
    expect(await admin.exists('batch-proxy:ratelimit:{ttl:peeked}')).toBe(0);
  });

  it('uses the key prefix it is given', async () => {
    const prefixed = new RedisLimiter({ redis: admin, keyPrefix: 'tenant-a:' });
    await prefixed.acquire('k', { ratePerSec: 1, burst: 1 });
    expect(await admin.exists('tenant-a:{k}')).toBe(1);
    // The caller owns a client it passed in: close leaves it open.
    await prefixed.close();
    expect(admin.status).toBe('ready');
  });

  it('closes the client it created', async () => {
    const own = await connected();
    await own.close();
    expect(own.client.status).toBe('end');
  });

  it('rejects at once, without queueing, while Redis is unreachable', async () => {
    const dead = RedisLimiter.connect('redis://127.0.0.1:1', { redisOptions: { retryStrategy: () => null } });
    const started = performance.now();
    await expect(dead.acquire('k', { ratePerSec: 1, burst: 1 })).rejects.toThrow();
    // Queueing would wait for a reconnect (connectTimeout is 1000 ms).
    expect(performance.now() - started).toBeLessThan(500);
    await dead.close();
  });
});

function toDecision(reply: unknown): Decision {
  const [granted, remaining, ms, leased] = reply as [number, number, string, number];
  if (granted !== 1) return { granted: false, remaining: 0, retryAfterMs: Number(ms) };
  return { granted: true, remaining, settleAfterMs: Number(ms), grant: { leased: leased === 1 } };
}

/** A stored bucket ("<tat>" or "<tat> <flying> <hold>") as numbers. */
function toState(reply: unknown): BucketState {
  const [tat, flying, hold] = String(reply).split(' ');
  return { tat: Number(tat), flying: Number(flying ?? 0), hold: Number(hold ?? 0) };
}

/** `INFO commandstats` as command → calls. */
function commandStats(info: string): Map<string, number> {
  const stats = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    stats.set(match[1] ?? '', Number(match[2]));
  }
  return stats;
}

describe('RedisLimiter scope notices (share, onShared)', () => {
  /** Resolves once `count` clients subscribe to `channel`. */
  async function subscribers(channel: string, count: number): Promise<void> {
    for (;;) {
      const [, n] = (await admin.pubsub('NUMSUB', channel)) as [string, number];
      if (n >= count) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Resolves with what `heard` holds once it holds `count` notices, or after `ms`. */
  async function settled<T>(heard: T[], count: number, ms = 1_000): Promise<T[]> {
    const until = performance.now() + ms;
    while (heard.length < count && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return heard;
  }

  it('delivers a notice one replica shares to the others, never to itself', async () => {
    const prefix = `notices:${Date.now()}:`;
    const [a, b, c] = await Promise.all([connected(prefix), connected(prefix), connected(prefix)]);
    const heard = { a: [] as ScopeNotice[], b: [] as ScopeNotice[], c: [] as ScopeNotice[] };
    a.onShared((n) => heard.a.push(n));
    b.onShared((n) => heard.b.push(n));
    c.onShared((n) => heard.c.push(n));
    await subscribers(`${prefix}shared`, 3);
    const notice = { appId: 'v1.0 app with spaces', group: 'ab'.repeat(16), pauseMs: 1_500.5, paceMs: 250 };
    a.share(notice);
    b.share({ appId: 'x', group: 'cd'.repeat(16), paceMs: 40 });
    expect(await settled(heard.c, 2)).toEqual(
      expect.arrayContaining([notice, { appId: 'x', group: 'cd'.repeat(16), paceMs: 40 }]),
    );
    expect(await settled(heard.b, 1)).toEqual([notice]);
    expect(await settled(heard.a, 1)).toEqual([{ appId: 'x', group: 'cd'.repeat(16), paceMs: 40 }]);
    // Nothing more: neither hears its own.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect([heard.a.length, heard.b.length, heard.c.length]).toEqual([1, 1, 2]);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('ignores what is not a notice on its channel, and a listener that throws', async () => {
    const prefix = `notices-bad:${Date.now()}:`;
    const [a, b] = await Promise.all([connected(prefix), connected(prefix)]);
    const heard: ScopeNotice[] = [];
    b.onShared(() => {
      throw new Error('a bug in a listener');
    });
    b.onShared((n) => heard.push(n));
    await subscribers(`${prefix}shared`, 1);
    for (const bad of [
      'not json',
      '{}',
      JSON.stringify({ r: 'x', a: 'app', g: 'short', p: 1 }),
      JSON.stringify({ r: 'x', a: 'app', g: 'ab'.repeat(16), p: -1 }),
      JSON.stringify({ r: 'x', a: 'app', g: 'ab'.repeat(16), p: 'soon' }),
      JSON.stringify({ r: 'x', a: 'app', g: 'ab'.repeat(16) }),
    ]) {
      await admin.publish(`${prefix}shared`, bad);
    }
    a.share({ appId: 'app', group: 'ef'.repeat(16), pauseMs: 10 });
    expect(await settled(heard, 1)).toEqual([{ appId: 'app', group: 'ef'.repeat(16), pauseMs: 10 }]);
    await Promise.all([a.close(), b.close()]);
  });

  it('shares nothing, and throws nothing, while Redis is unreachable', () => {
    const dead = RedisLimiter.connect('redis://127.0.0.1:1', { redisOptions: { retryStrategy: () => null } });
    expect(() => dead.share({ appId: 'app', group: 'ab'.repeat(16), pauseMs: 10 })).not.toThrow();
    return dead.close();
  });
});

describe('the paced Lua scripts (adaptive pacing) at exact instants', () => {
  let keys = 0;
  const N = 1_700_000_000_123;

  /** The scripts on one paced bucket, with the test-only clock argument. */
  function pacedBucket(limit: BucketLimit) {
    const client = admin as unknown as Record<string, (...args: string[]) => Promise<unknown>>;
    const key = `paced:${keys++}`;
    const pace = `${key}:pace`;
    const run = (name: 'acquire' | 'settle' | 'pause' | 'peek', k: string[], args: string[]) =>
      (client[commandName(name)] as (...a: string[]) => Promise<unknown>).call(
        client,
        ...k,
        String(limit.ratePerSec),
        String(limit.burst),
        ...args,
      );
    const p = paceArg(limit.pace);
    return {
      acquire: async (now: number) => {
        const reply = (await run(
          'acquire',
          [key, `${key}:turns`, pace],
          ['0', String(now), '', '', '0', p],
        )) as [number, number, string, number, string, number];
        return { decision: toDecision(reply), rate: Number(reply[4]), adjusted: reply[5] };
      },
      settle: async (now: number) => {
        const [, reopen] = (await run(
          'settle',
          [key, `${key}:turns`, pace],
          [String(now), '', '', '', '', p],
        )) as [string, string];
        return Number(reopen);
      },
      pause: async (now: number, ms: number) => {
        const [, rate, adjusted] = (await run('pause', [key, pace], [String(ms), String(now), p])) as [
          string,
          string,
          number,
        ];
        return { rate: Number(rate), adjusted };
      },
      peek: async (now: number) => {
        const [tokens, cooldownMs] = (await run('peek', [key, pace], [String(now), p])) as [number, string];
        return { tokens, cooldownMs: Number(cooldownMs) };
      },
    };
  }

  it('lowers the rate once per cooldown on 429s and paces at the learned rate', async () => {
    const b = pacedBucket({ ratePerSec: 999, burst: 2, pace: PACE_PARAMS });
    expect(await b.pause(N, 100)).toEqual({ rate: 45, adjusted: -1 });
    expect(await b.pause(N + 10, 0)).toEqual({ rate: 45, adjusted: 0 });
    // Empty after the pause, at 45/s (not ARGV's 999/s): the grant at its end is one interval of
    // 45/s ahead of the bucket's schedule.
    const { decision, rate } = await b.acquire(N + 100);
    expect(rate).toBe(45);
    expect(decision).toMatchObject({ granted: true, remaining: 0 });
    // (at this epoch a double resolves about 0.2 µs)
    expect(decision.granted && decision.settleAfterMs).toBeCloseTo(1000 / 45, 3);
    // At 45, below the ceiling (50, where the first 429 came): cut twice.
    expect(await b.pause(N + 1000, 0)).toEqual({ rate: 45 * (0.9 * 0.9), adjusted: -1 });
  });

  it('cuts by exactly the factor on a 429 that ends a probe interval with demand: never a raise first', async () => {
    for (const increaseStep of [2, 50]) {
      const b = pacedBucket({ ratePerSec: 999, burst: 1, pace: { ...PACE_PARAMS, increaseStep } });
      await b.acquire(N);
      expect((await b.acquire(N)).decision).toMatchObject({ granted: false }); // demand
      // The 429 at N + 1000 ends that interval: judged clean, it would raise the rate before the cut.
      expect(await b.pause(N + 1000, 0)).toEqual({ rate: 45, adjusted: -1 });
      expect((await b.acquire(N + 1000)).rate).toBe(45);
    }
    // At the minimum a 429 moves nothing, and says so.
    const floor = pacedBucket({ ratePerSec: 999, burst: 1, pace: { ...PACE_PARAMS, minRatePerSec: 50 } });
    await floor.acquire(N);
    await floor.acquire(N);
    expect(await floor.pause(N + 1000, 0)).toEqual({ rate: 50, adjusted: 0 });
  });

  it('raises the rate by one step after a probe interval with demand and no 429', async () => {
    const b = pacedBucket({ ratePerSec: 999, burst: 1, pace: PACE_PARAMS });
    expect((await b.acquire(N)).decision).toMatchObject({ granted: true, remaining: 0 });
    expect((await b.acquire(N)).decision).toMatchObject({ granted: false }); // demand
    expect(await b.acquire(N + 999)).toMatchObject({ rate: 50, adjusted: 0 });
    expect(await b.acquire(N + 1000)).toMatchObject({ rate: 52, adjusted: 1 });
  });

  it('computes what pace.ts and gcra.ts compute (the in-process limiter), on random sequences', async () => {
    const paramsArb = fc.record({
      maxRatePerSec: fc.constantFrom(10, 100, 1000 / 7),
      minRatePerSec: fc.constantFrom(0.5, 1, 5),
      initialRatePerSec: fc.constantFrom(5, 9.5),
      decreaseFactor: fc.constantFrom(0.5, 0.9),
      increaseStep: fc.constantFrom(0.5, 2, 3.3),
      probeIntervalMs: fc.constantFrom(100, 1000),
    });
    const stepArb = fc.record({
      op: fc.constantFrom('acquire', 'acquire', 'acquire', 'settle', 'pause', 'peek'),
      dt: fc.oneof(
        fc.constant(0),
        fc.double({ min: 0, max: 1500, noNaN: true }),
        fc.integer({ min: 0, max: 200 }),
      ),
      ms: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 3000, noNaN: true })),
    });
    await fc.assert(
      fc.asyncProperty(
        paramsArb,
        fc.integer({ min: 1, max: 5 }),
        fc.array(stepArb, { maxLength: 40 }),
        async (pace, burst, steps) => {
          const limit: BucketLimit = { ratePerSec: 1, burst, pace };
          const b = pacedBucket(limit);
          let now = N + 0.456;
          const memory = new MemoryLimiter({ now: () => now });
          const reports: PaceReport[] = [];
          memory.onPace((r) => reports.push(r));
          for (const step of steps) {
            now += step.dt;
            if (step.op === 'acquire') {
              const expected = await memory.acquire('k', limit);
              const got = await b.acquire(now);
              expect({ ...got.decision, ratePerSec: got.rate }).toEqual(expected);
              expect(got.adjusted).toBe(code(reports.at(-1)));
            } else if (step.op === 'settle') {
              expect(await b.settle(now)).toBeCloseTo((await memory.settle('k', limit)).reopenInMs, 6);
            } else if (step.op === 'pause') {
              await memory.pause('k', limit, step.ms);
              expect(await b.pause(now, step.ms)).toEqual({
                rate: reports.at(-1)?.ratePerSec,
                adjusted: code(reports.at(-1)),
              });
            } else {
              expect(await b.peek(now)).toEqual(await memory.peek('k', limit));
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

function code(report: PaceReport | undefined): number {
  if (report?.adjusted === 'increase') return 1;
  if (report?.adjusted === 'decrease') return -1;
  return 0;
}

describe('RedisLimiter with adaptive pacing', () => {
  it('shares one learned rate between replicas: a 429 seen by one paces the other', async () => {
    const a = await connected();
    const b = await connected();
    const reports: PaceReport[] = [];
    a.onPace((r) => reports.push(r));
    b.onPace((r) => reports.push(r));
    const limit: BucketLimit = { ratePerSec: 1, burst: 100, pace: PACE_PARAMS };
    try {
      expect(await a.acquire('fleet-pace', limit)).toMatchObject({ granted: true, ratePerSec: 50 });
      await b.pause('fleet-pace', limit, 0);
      expect(await a.acquire('fleet-pace', limit)).toMatchObject({ ratePerSec: 45 });
      expect(await b.acquire('fleet-pace', limit)).toMatchObject({ ratePerSec: 45 });
      // The other replica's 429 within the same cooldown is the same overshoot.
      await a.pause('fleet-pace', limit, 0);
      expect(await b.acquire('fleet-pace', limit)).toMatchObject({ ratePerSec: 45 });
      expect(reports.filter((r) => r.adjusted === 'decrease')).toEqual([
        { key: 'fleet-pace', ratePerSec: 45, adjusted: 'decrease' },
      ]);
      // One hash per paced bucket next to the bucket, expiring once idle.
      const ttl = await admin.pttl('batch-proxy:ratelimit:{fleet-pace}:pace');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600_000);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('leaves a fixed-rate bucket without a pace key', async () => {
    const a = await connected();
    try {
      const d = await a.acquire('fixed-pace', { ratePerSec: 1, burst: 2 });
      expect(d).not.toHaveProperty('ratePerSec');
      await a.pause('fixed-pace', { ratePerSec: 1, burst: 2 }, 10);
      expect(await admin.exists('batch-proxy:ratelimit:{fixed-pace}:pace')).toBe(0);
    } finally {
      await a.close();
    }
  });
});
