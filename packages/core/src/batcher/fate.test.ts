// Fate isolation (SPEC §8d, issue #28) on a manual clock: one credential's failures open its own
// breaker, not its app's; several open together make it the app's; a batch that fails as a whole is
// bisected so only the op that fails it loses; what the engine remembers per group and resource is
// bounded and forgotten when idle.

import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { MemoryLimiter } from '../ratelimit/memory.js';
import { type FakeCall, fakeTransport } from '../testing/fake-transport.js';
import { opOf, statusOf } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import type { Answer } from './op.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

function setup(overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock();
  // Every call takes 10 ms and answers each op 200 with its sequence number, unless `fail` says the
  // whole call is a 500.
  const upstream = fakeTransport(clock);
  upstream.latencyMs = 10;
  upstream.answerOp = (o) => ({ status: 200, body: { seq: o.id } });
  const fail = (when: (call: FakeCall) => boolean) => {
    upstream.respond = (call) => (when(call) ? { status: 500, headers: {}, body: '{}' } : undefined);
  };
  const limiter = new MemoryLimiter({ now: () => clock.now() });
  const circuits: Array<{ appId: string; group: string; state: string }> = [];
  const scheduler = new Scheduler(
    schedulerOptions({
      limiter,
      upstream,
      clock,
      batchLimit: { ratePerSec: 1000, burst: 1000 },
      breakerFailures: 2,
      breakerOpenMs: 1_000,
      random: () => 0.5,
      onCircuit: (e) => circuits.push(e),
      ...overrides,
    }),
  );
  const submit = (request: OpRequest, credential = 'k1', appId = 'app') =>
    scheduler.submit({ appId, credential, op: request });
  return { clock, upstream, fail, scheduler, submit, circuits };
}

const code = (a: Answer) => (a.kind === 'error' ? a.error.code : a.status);

describe('a breaker per group (app + credential)', () => {
  it('one credential failing opens its own breaker; another credential of the app is served', async () => {
    const { clock, fail, scheduler, submit, circuits } = setup();
    fail((c) => c.authorization === 'k1');
    for (const u of ['a', 'b']) {
      const failed = submit(opOf('POST', `/users/${u}/x`));
      await clock.advance(20);
      expect(statusOf(await failed)).toBe(502);
    }
    expect(circuits).toEqual([
      { appId: 'app', group: expect.stringMatching(/^[0-9a-f]{12}$/), state: 'open' },
    ]);
    // k1 is refused at once; k2 of the same app queues and is answered by the upstream.
    expect(code(await submit(opOf('GET', '/users/c'), 'k1'))).toBe('PROXY_CIRCUIT_OPEN');
    const served = submit(opOf('GET', '/users/c'), 'k2');
    await clock.advance(20);
    expect(statusOf(await served)).toBe(200);
    expect(scheduler.snapshot()).toMatchObject([
      { appId: 'app', circuit: 'open', openGroups: 1, appWide: false },
    ]);
    // The group digest never shows the credential.
    expect(JSON.stringify(circuits)).not.toContain('k1');
  });

  it('three groups open together refuse the whole app, a fresh credential too; a probe each reopens it', async () => {
    const { clock, fail, upstream, scheduler, submit } = setup();
    fail(() => true);
    for (const k of ['k1', 'k2', 'k3']) {
      for (const u of ['a', 'b']) {
        const failed = submit(opOf('POST', `/users/${u}/x`), k);
        await clock.advance(20);
        expect(statusOf(await failed)).toBe(502);
      }
    }
    expect(scheduler.snapshot()).toMatchObject([{ openGroups: 3, appWide: true }]);
    const fresh = await submit(opOf('GET', '/users/z'), 'k4');
    expect(fresh).toMatchObject({ kind: 'error', error: { code: 'PROXY_CIRCUIT_OPEN', status: 503 } });
    expect(upstream.calls).toHaveLength(6);
    // Another app is not touched.
    fail(() => false);
    const other = submit(opOf('GET', '/users/z'), 'k1', 'other');
    await clock.advance(20);
    expect(statusOf(await other)).toBe(200);
    // Half-open: each group probes for itself, and the app is no longer refused as a whole.
    await clock.advance(1_000);
    const probe = submit(opOf('GET', '/users/p'), 'k4');
    await clock.advance(20);
    expect(statusOf(await probe)).toBe(200);
    expect(scheduler.snapshot().find((a) => a.appId === 'app')).toMatchObject({ appWide: false });
  });

  it('callers without a credential are a group like any other: pass-through calls are not refused for it', async () => {
    const { clock, fail, submit, scheduler } = setup();
    fail((c) => c.authorization === '');
    for (const u of ['a', 'b']) {
      const failed = submit(opOf('POST', `/users/${u}/x`), '');
      await clock.advance(20);
      expect(statusOf(await failed)).toBe(502);
    }
    expect(code(await submit(opOf('GET', '/users/c'), ''))).toBe('PROXY_CIRCUIT_OPEN');
    // A pass-through or client batch call (no group here) is refused only when the app is open whole.
    const admitted = await scheduler.admit('app', 'batch');
    expect(typeof admitted).toBe('function');
    if (typeof admitted === 'function') admitted();
  });

  it('a whole-call 4xx or a 429 of one group opens nothing', async () => {
    const { clock, upstream, scheduler, submit } = setup();
    upstream.respond = () => ({ status: 400, headers: {}, body: '{}' });
    for (const u of ['a', 'b', 'c']) {
      const answered = submit(opOf('GET', `/users/${u}`));
      await clock.advance(20);
      await answered;
    }
    expect(scheduler.snapshot()).toMatchObject([{ circuit: 'closed', openGroups: 0 }]);
  });
});

describe('a batch that fails as a whole (a poisoned op)', () => {
  it('is sent again in halves until the poisoned op is alone: every other op gets its answer', async () => {
    const { clock, fail, upstream, submit } = setup({ maxAttempts: 2, breakerFailures: 100 });
    fail((c) => c.paths.includes('/users/poison'));
    const paths = ['a', 'b', 'c', 'poison', 'd', 'e', 'f', 'g'].map((u) => `/users/${u}`);
    const answers = paths.map((p) => submit(opOf('GET', p)));
    await clock.advance(10_000);
    const byPath = Object.fromEntries((await Promise.all(answers)).map((a, i) => [paths[i], statusOf(a)]));
    expect(byPath).toEqual({
      '/users/a': 200,
      '/users/b': 200,
      '/users/c': 200,
      '/users/poison': 502,
      '/users/d': 200,
      '/users/e': 200,
      '/users/f': 200,
      '/users/g': 200,
    });
    // 8 → halves of at most 4 → 2 → 1: the poison alone then spends its own two attempts.
    const sizes = upstream.calls.map((c) => c.paths.length);
    expect(sizes[0]).toBe(8);
    expect(Math.max(...sizes.slice(1))).toBeLessThanOrEqual(4);
    expect(upstream.calls.filter((c) => c.paths.length === 1 && c.paths[0] === '/users/poison')).toHaveLength(
      2,
    );
    // Every op other than the poison was sent at most log2(8) + 1 times.
    for (const p of paths.filter((x) => x !== '/users/poison')) {
      expect(upstream.calls.filter((c) => c.paths.includes(p)).length, p).toBeLessThanOrEqual(4);
    }
  });

  it('keeps a suspect resource away from writes that may not run twice, and sends a suspect write alone', async () => {
    const { clock, fail, upstream, submit } = setup({ maxAttempts: 3, breakerFailures: 100 });
    fail((c) => c.paths.includes('/users/poison'));
    const first = [submit(opOf('GET', '/users/poison')), submit(opOf('GET', '/users/ok'))];
    await clock.advance(10_000);
    expect((await Promise.all(first)).map(statusOf)).toEqual([502, 200]);
    // Now suspect: a POST elsewhere and a GET of the poison arrive together.
    upstream.calls.length = 0;
    const later = [
      submit(opOf('POST', '/conversations/c/messages')),
      submit(opOf('GET', '/users/poison')),
      submit(opOf('POST', '/users/poison/x')),
    ];
    await clock.advance(10_000);
    expect((await Promise.all(later)).map(statusOf)).toEqual([200, 502, 200]);
    for (const c of upstream.calls) {
      // The POST that is not suspect never shares a call with the suspect GET.
      const both = c.paths.includes('/conversations/c/messages') && c.paths.includes('/users/poison');
      expect(both, JSON.stringify(c.paths)).toBe(false);
    }
    // A suspect write rides alone, and is sent once.
    expect(upstream.calls.filter((c) => c.paths.includes('/users/poison/x'))).toEqual([
      expect.objectContaining({ paths: ['/users/poison/x'] }),
    ]);
  });

  it('marks ops of the resource queued while its batch flew: a POST queued beside one never shares its batch', async () => {
    const { clock, fail, upstream, submit } = setup({ maxAttempts: 1, breakerFailures: 100, windowMs: 5 });
    fail((c) => c.paths.includes('/users/poison'));
    const first = [submit(opOf('GET', '/users/poison')), submit(opOf('GET', '/users/ok'))];
    // Leaves at 5, fails at 15; meanwhile another read of the resource and a POST elsewhere queue.
    await clock.advance(12);
    const later = [
      submit({ ...opOf('GET', '/users/poison'), query: { q: '1' } }),
      submit(opOf('POST', '/conversations/c/messages')),
    ];
    await clock.advance(10_000);
    expect((await Promise.all(first)).map(statusOf)).toEqual([502, 200]);
    expect((await Promise.all(later)).map(statusOf)).toEqual([502, 200]);
    const posted = upstream.calls.filter((c) => c.paths.includes('/conversations/c/messages'));
    expect(posted.map((c) => c.paths)).toEqual([['/conversations/c/messages']]);
  });

  it('does not hide an upstream that is down: the breaker still opens', async () => {
    const { clock, fail, upstream, scheduler, submit } = setup({ maxAttempts: 3, breakerFailures: 3 });
    fail(() => true);
    const answers = ['a', 'b', 'c', 'd'].map((u) => submit(opOf('GET', `/users/${u}`)));
    await clock.advance(10_000);
    // The halves fail too, each level together (counted once): after three levels the breaker is
    // open and answers the rest at once. The cost of bisecting an outage: 1 + 2 + 4 calls for 4 ops,
    // at most 2N − 1 for a batch of N.
    const codes = (await Promise.all(answers)).map(code);
    expect(codes).toContain('PROXY_CIRCUIT_OPEN');
    expect(codes.every((c) => c === 'PROXY_CIRCUIT_OPEN' || c === 'PROXY_UPSTREAM_UNAVAILABLE')).toBe(true);
    expect(upstream.calls.map((c) => c.paths.length)).toEqual([4, 2, 2, 1, 1, 1, 1]);
    expect(scheduler.snapshot()).toMatchObject([{ openGroups: 1 }]);
  });
});

describe('fair service between groups (round-robin)', () => {
  it('a group’s backlog does not starve a group that arrives after it: tokens go to groups in turn', async () => {
    // One batch call per 100 ms, no burst to speak of: tokens are scarce.
    const { clock, upstream, submit } = setup({ batchLimit: { ratePerSec: 10, burst: 1 }, maxOps: 10 });
    const backlog = Array.from({ length: 50 }, (_, i) => submit(opOf('GET', `/users/a${i}`), 'k1'));
    await clock.advance(1);
    const late = [submit(opOf('GET', '/users/b'), 'k2'), submit(opOf('GET', '/users/c'), 'k3')];
    await clock.advance(2_000);
    await Promise.all([...backlog, ...late]);
    // k1's first batch had the token; then k2 and k3 take their turn before k1's second batch.
    expect(upstream.calls.map((c) => c.authorization)).toEqual(['k1', 'k2', 'k3', 'k1', 'k1', 'k1', 'k1']);
  });

  it('a group served recently waits behind one that has waited longer, whatever their oldest op', async () => {
    const { clock, upstream, submit } = setup({ batchLimit: { ratePerSec: 10, burst: 1 }, maxOps: 2 });
    const first = [submit(opOf('GET', '/users/a1'), 'k1'), submit(opOf('GET', '/users/a2'), 'k1')];
    await clock.advance(1);
    const answers = [
      submit(opOf('GET', '/users/a3'), 'k1'),
      submit(opOf('GET', '/users/a4'), 'k1'),
      submit(opOf('GET', '/users/b1'), 'k2'),
      submit(opOf('GET', '/users/b2'), 'k2'),
      submit(opOf('GET', '/users/c1'), 'k3'),
    ];
    await clock.advance(1_000);
    await Promise.all([...first, ...answers]);
    expect(upstream.calls.map((c) => `${c.authorization}:${c.paths.length}`)).toEqual([
      'k1:2',
      'k2:2',
      'k3:1',
      'k1:2',
    ]);
  });
});

describe('the groups an app shows (status page)', () => {
  it('lists the busiest groups by queued ops with their breaker, the others summed; never a credential', async () => {
    const { clock, fail, scheduler, submit } = setup({ batchLimit: { ratePerSec: 1, burst: 1 } });
    fail((c) => c.authorization === 'k-bad');
    // k-bad fails twice (breaker 2): open. Then tokens are scarce: the others queue.
    for (const i of [0, 1]) {
      const failed = submit(opOf('POST', `/users/f${i}`), 'k-bad');
      await clock.advance(1_100);
      await failed;
    }
    for (let g = 0; g < 8; g++)
      for (let i = 0; i <= g; i++) void submit(opOf('GET', `/users/g${g}-${i}`), `k${g}`);
    await clock.advance(1);
    const view = scheduler.groups('app', 3);
    expect(view.busiest.map((g) => g.queued)).toEqual([8, 7, 6]);
    // k-bad's breaker (open at 1,115 for 1 s) is half-open by now: still listed.
    const bad = scheduler.groups('app', 20).busiest.find((g) => g.circuit !== 'closed');
    expect(bad).toMatchObject({
      queued: 0,
      circuit: 'half-open',
      group: expect.stringMatching(/^[0-9a-f]{12}$/),
    });
    expect(view.other.groups).toBe(9 - 3);
    expect(view.other.queued).toBe(36 - 21);
    expect(JSON.stringify(scheduler.groups('app', 20))).not.toContain('k-bad');
    // An app never seen shows nothing.
    expect(scheduler.groups('nobody')).toEqual({ busiest: [], other: { groups: 0, queued: 0 } });
    await clock.advance(60_000);
  });
});

describe('memory', () => {
  it('forgets the groups and suspect resources of a wave of credentials once idle', async () => {
    const { clock, fail, scheduler, submit } = setup({ breakerFailures: 1 });
    fail(() => true);
    // A wave of credentials, each failing once: one open breaker each.
    for (let i = 0; i < 50; i++) {
      const failed = submit(opOf('POST', '/users/a/x'), `k${i}`, `app${i}`);
      await clock.advance(20);
      await failed;
    }
    expect(scheduler.domains.groups).toBe(50);
    // Idle past the longest open time: the sweep forgets every group and app.
    await clock.advance(5 * 60_000);
    expect(scheduler.domains).toEqual({ groups: 0, resources: 0, apps: 0 });
    expect(scheduler.snapshot()).toEqual([]);
  });
});
