// Budgets per tenant (SPEC §8d): Graph limits per tenant and application, so each tenant's
// accepted credentials spend their tenant's budgets, and a credential the upstream has not accepted
// spends its own — whatever its (unverified) claims say. On a manual clock, through the Scheduler
// and a Graph-shaped fake upstream: every upstream call at an exact instant.

import { describe, expect, it } from 'vitest';
import { graph } from '../dialect/graph.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { fakeTransport, graphWire } from '../testing/fake-transport.js';
import { graphOp } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { Budget } from './budget.js';
import { ManualClock } from './clock.js';
import { Lanes } from './lanes.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { APP_SCOPE, Scopes, scopedAppId } from './scopes.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** An Entra-shaped bearer token (the proxy never checks signatures: the upstream does). */
const jwt = (claims: Record<string, unknown>, signature = 'sig') =>
  `Bearer ${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}.${signature}`;

const ALICE = jwt({ tid: 'contoso', oid: 'alice', appid: 'app-1' });
const ANN = jwt({ tid: 'contoso', oid: 'ann', azp: 'app-1' });
const BOB = jwt({ tid: 'fabrikam', oid: 'bob', appid: 'app-1' });
/** Claims contoso's tenant and Alice's user; the upstream refuses it (a bad signature). */
const FORGED = jwt({ tid: 'contoso', oid: 'alice', appid: 'app-1' }, 'forged');

function engine(overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock(1_000);
  const upstream = fakeTransport(clock, { wire: graphWire });
  upstream.respond = (call) =>
    call.authorization === FORGED
      ? {
          status: 401,
          headers: { 'content-type': 'application/json' },
          body: '{"error":{"code":"InvalidAuthenticationToken"}}',
        }
      : undefined;
  const limiter = new MemoryLimiter({ now: () => clock.now() });
  const scheduler = new Scheduler(
    schedulerOptions({
      dialect: graph,
      upstream,
      limiter,
      clock,
      windowMs: 5,
      maxOps: 20,
      maxWaitMs: 60_000,
      // One batch call per second, no burst: a second call of a scope waits a whole interval.
      batchLimit: { ratePerSec: 1, burst: 1 },
      ...overrides,
    }),
  );
  let base = 1_000;
  const submit = (path: string, credential: string, method: 'GET' | 'PATCH' = 'GET') =>
    scheduler.submit({
      appId: 'v1.0',
      credential,
      op: method === 'GET' ? graphOp('GET', path) : graphOp('PATCH', path, { body: { a: 1 } }),
    });
  /** Instants of the upstream calls of `credential` (all when absent), from the last `accept`. */
  const instants = (credential?: string) =>
    upstream.calls
      .filter((c) => credential === undefined || c.authorization === credential)
      .map((c) => c.at - base);
  /** Each credential's first call, answered (the upstream accepts it); instants count from here. */
  const accept = async (...credentials: string[]) => {
    await Promise.all([...credentials.map((c) => submit('/organization', c)), clock.advance(3_000)]);
    upstream.calls.length = 0;
    base = clock.now();
  };
  return { clock, upstream, limiter, scheduler, submit, instants, accept };
}

describe('budgets per tenant (Graph)', () => {
  it('gives each accepted tenant its own budget: one tenant’s backlog never delays another', async () => {
    // Conflicting writes leave one per call (no dependsOn chain).
    const { clock, submit, instants, accept } = engine({ dependsOnChains: false });
    await accept(ALICE, BOB);
    // Alice's 3 batches' worth (conflicting writes: one per call) and Bob's read at once.
    const alice = [1, 2, 3].map(() => submit('/me/messages/m1', ALICE, 'PATCH'));
    const bob = submit('/users/bob', BOB);
    await clock.advance(5);
    // Both tenants' first calls leave at the window's end: Bob never waits behind Alice.
    expect(instants(BOB)).toEqual([5]);
    expect(instants(ALICE)).toEqual([5]);
    await clock.advance(2_100);
    await Promise.all([...alice, bob]);
    // Alice's tenant paces at its own 1/s.
    expect(instants(ALICE)).toEqual([5, 1_005, 2_005]);
  });

  it('lets the credentials of one tenant share its budget (tid + appid or azp)', async () => {
    const { clock, submit, instants, accept } = engine();
    await accept(ALICE, ANN);
    const calls = [submit('/users/alice', ALICE), submit('/users/ann', ANN)];
    await clock.advance(5);
    // One token a second for contoso/app-1: the second group waits its turn.
    expect(instants()).toEqual([5]);
    await clock.advance(1_000);
    await Promise.all(calls);
    expect(instants()).toEqual([5, 1_005]);
  });

  it('makes a forged token claiming a tenant spend its own budget, never the tenant’s', async () => {
    const { clock, submit, instants, accept } = engine();
    await accept(ALICE);
    // The forger's calls are refused (401): it is never accepted, whatever its claims.
    const forged = [submit('/users/x1', FORGED), submit('/users/x2', FORGED)];
    await clock.advance(5);
    expect(instants(FORGED)).toEqual([5]);
    // Alice's call leaves at once: the forger took no token of contoso's.
    const alice = submit('/users/alice', ALICE);
    await clock.advance(5);
    expect(instants(ALICE)).toEqual([10]);
    await clock.advance(1_100);
    await Promise.all([...forged, alice]);
    expect(instants(FORGED)).toEqual([5]);
  });

  it('spends a credential’s own budget until the upstream accepts it, its tenant’s after, in order', async () => {
    const { clock, submit, instants, accept, upstream } = engine({ dependsOnChains: false });
    await accept(ANN);
    upstream.latencyMs = 100;
    // Alice is new: her first write spends her own budget (answered, so accepted, at 105).
    const first = submit('/me/messages/m1', ALICE, 'PATCH');
    await clock.advance(10);
    // Her second write to the same message waits for the first, then spends contoso's token.
    const second = submit('/me/messages/m1', ALICE, 'PATCH');
    await clock.advance(100);
    expect(instants(ALICE)).toEqual([5, 105]);
    // Ann (contoso) now waits for contoso's next token, an interval after Alice's second call was
    // answered (205): that call took contoso's token.
    const ann = submit('/users/ann', ANN);
    await clock.advance(1_200);
    await Promise.all([first, second, ann]);
    expect(instants(ANN)).toEqual([1_205]);
    expect(upstream.calls.filter((c) => c.authorization === ALICE).map((c) => c.paths)).toEqual([
      ['/me/messages/m1'],
      ['/me/messages/m1'],
    ]);
  });

  it('charges a pass-through call to its credential’s scope: its tenant’s once accepted', async () => {
    const { clock, scheduler, submit, instants, accept } = engine();
    await accept(ALICE, ANN, BOB);
    const admitted = await scheduler.admit('v1.0', 'batch', undefined, ALICE);
    expect(typeof admitted).toBe('function');
    // Contoso's token is spent by Alice's pass-through call: Ann waits for the next; Bob does not.
    const calls = [submit('/users/ann', ANN), submit('/users/bob', BOB)];
    await clock.advance(5);
    expect([instants(ANN), instants(BOB)]).toEqual([[], [5]]);
    // Answered at 5: contoso's next token an interval on.
    if (typeof admitted === 'function') admitted();
    await clock.advance(1_000);
    await Promise.all(calls);
    expect(instants(ANN)).toEqual([1_005]);
  });

  it('keeps every group on the app’s budget for a dialect without scopes, and for tokens without claims', async () => {
    const { clock, submit, instants, accept } = engine();
    await accept('Bearer opaque-1', 'Bearer opaque-2');
    const calls = [submit('/users/a', 'Bearer opaque-1'), submit('/users/b', 'Bearer opaque-2')];
    await clock.advance(5);
    expect(instants()).toEqual([5]);
    await clock.advance(1_000);
    await Promise.all(calls);
    expect(instants()).toEqual([5, 1_005]);
  });

  it('hears the limiter’s reopen notices on a tenant scope’s budget (another replica settled)', async () => {
    const clock = new ManualClock(1_000);
    const upstream = fakeTransport(clock, { wire: graphWire });
    const memory = new MemoryLimiter({ now: () => clock.now() });
    const asked: Array<[string, number]> = [];
    let notify: (key: string, inMs: number) => void = () => {};
    const limiter = {
      acquire: (...args: Parameters<MemoryLimiter['acquire']>) => {
        asked.push([args[0], clock.now() - 1_000]);
        return memory.acquire(...args);
      },
      settle: (...args: Parameters<MemoryLimiter['settle']>) => memory.settle(...args),
      charge: (...args: Parameters<MemoryLimiter['charge']>) => memory.charge(...args),
      pause: (...args: Parameters<MemoryLimiter['pause']>) => memory.pause(...args),
      peek: (...args: Parameters<MemoryLimiter['peek']>) => memory.peek(...args),
      close: () => memory.close(),
      onReopen: (listener: (key: string, inMs: number) => void) => {
        notify = listener;
      },
    };
    const scheduler = new Scheduler(
      schedulerOptions({
        dialect: graph,
        upstream,
        limiter,
        clock,
        windowMs: 5,
        maxOps: 20,
        maxWaitMs: 60_000,
        batchLimit: { ratePerSec: 0.1, burst: 1 },
      }),
    );
    const submit = (path: string) =>
      scheduler.submit({ appId: 'v1.0', credential: ALICE, op: graphOp('GET', path) });
    await Promise.all([submit('/organization'), clock.advance(5)]);
    // Accepted: contoso's budget, spent once; the next call waits for its next token (10 s).
    await Promise.all([submit('/users/a'), clock.advance(5)]);
    const waiting = submit('/users/b');
    await clock.advance(500);
    asked.length = 0;
    const tenantKey = 'test|v1.0~t:contoso/app-1|batch';
    notify(tenantKey, 0);
    await clock.advance(1);
    // Heard: asked again at once, on contoso's bucket.
    expect(asked).toEqual([[tenantKey, 510]]);
    await clock.advance(10_000);
    await waiting;
  });
});

describe('Scopes', () => {
  function scopes(claimsOf: ((c: string) => string | undefined) | undefined) {
    const clock = new ManualClock(0);
    const limiter = new MemoryLimiter({ now: () => clock.now() });
    const accepted = new Set<string>();
    const registered = new Map<string, Budget>();
    const made: string[] = [];
    const s = new Scopes({
      claimsOf,
      accepted: (c) => accepted.has(c),
      make: (scope) => {
        made.push(scope);
        const budget = (name: 'batch' | 'rest') =>
          new Budget(
            name,
            `up|${scopedAppId('v1.0', scope)}|${name}`,
            { ratePerSec: 1, burst: 1 },
            {
              limiter,
              clock,
              leaseMs: 1_000,
              wake: () => {},
            },
          );
        return new Lanes(budget('batch'), budget('rest'), { windowMs: 5, singleOpDirect: false });
      },
      made: (budgets) => {
        for (const b of budgets) registered.set(b.key, b);
      },
      dropped: (budgets) => {
        for (const b of budgets) registered.delete(b.key);
      },
    });
    return { s, clock, accepted, registered, made };
  }

  it('has one scope, the app’s, without claims', () => {
    const { s, registered } = scopes(undefined);
    expect(s.split).toBe(false);
    expect(s.scopeOf(ALICE, 0)).toBe(APP_SCOPE);
    expect(s.lanesOf(ALICE, 0)).toBe(s.app);
    expect([...registered.keys()]).toEqual(['up|v1.0|batch', 'up|v1.0|rest']);
  });

  it('keys a credential by its digest until accepted, by its claims after; never by the token', () => {
    const { s, accepted, registered } = scopes(graph.budgetScopeOf);
    const own = s.scopeOf(ALICE, 0);
    expect(own).toMatch(/^c:[0-9a-f]{32}$/);
    expect(s.scopeOf(FORGED, 0)).not.toBe(own);
    const lanes = s.lanesOf(ALICE, 0);
    expect(lanes).not.toBe(s.app);
    accepted.add(ALICE);
    expect(s.scopeOf(ALICE, 0)).toBe('t:contoso/app-1');
    expect(s.scopeOf(ANN, 0)).toMatch(/^c:/);
    accepted.add(ANN);
    expect(s.lanesOf(ANN, 0)).toBe(s.lanesOf(ALICE, 0));
    accepted.add('Bearer opaque');
    expect(s.scopeOf('Bearer opaque', 0)).toBe(APP_SCOPE);
    for (const key of registered.keys()) expect(key).not.toContain(ALICE.slice(7, 40));
    expect([...registered.keys()].sort()).toEqual(
      [
        'up|v1.0|batch',
        'up|v1.0|rest',
        `up|v1.0~${own}|batch`,
        `up|v1.0~${own}|rest`,
        'up|v1.0~t:contoso/app-1|batch',
        'up|v1.0~t:contoso/app-1|rest',
      ].sort(),
    );
  });

  it('forgets the scopes nobody uses once their budgets are as new, never the app’s', async () => {
    const { s, clock, accepted, registered } = scopes(graph.budgetScopeOf);
    accepted.add(ALICE);
    const lanes = s.lanesOf(ALICE, 0);
    s.lanesOf(BOB, 0);
    const decision = await lanes.batch.acquire({ waitedMs: 0 });
    await lanes.batch.settle(decision, { waitedMs: undefined });
    expect(s.size).toBe(3);
    s.sweep(clock.now());
    // Bob's own scope was never spent: gone. Contoso's is refilling: kept.
    expect(s.size).toBe(2);
    expect(s.isFresh(clock.now())).toBe(false);
    await clock.advance(1_000);
    s.sweep(clock.now());
    expect(s.size).toBe(1);
    expect(s.isFresh(clock.now())).toBe(true);
    expect([...registered.keys()]).toEqual(['up|v1.0|batch', 'up|v1.0|rest']);
  });

  it('reads tid with appid or azp, and only id-shaped claims', () => {
    expect(graph.budgetScopeOf?.(ALICE)).toBe('contoso/app-1');
    expect(graph.budgetScopeOf?.(ANN)).toBe('contoso/app-1');
    expect(graph.budgetScopeOf?.(jwt({ tid: 'contoso' }))).toBeUndefined();
    expect(graph.budgetScopeOf?.(jwt({ appid: 'app-1' }))).toBeUndefined();
    expect(graph.budgetScopeOf?.(jwt({ tid: 'a/b', appid: 'app-1' }))).toBeUndefined();
    expect(graph.budgetScopeOf?.(jwt({ tid: 7, appid: 'app-1' }))).toBeUndefined();
    expect(graph.budgetScopeOf?.('Bearer not.a-jwt.at-all')).toBeUndefined();
    expect(graph.budgetScopeOf?.('Basic abc')).toBeUndefined();
  });
});
