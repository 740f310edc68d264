// SPEC §8d, a forged token delays nobody but itself: what a credential claims (Graph's `oid`, for
// `/me`) — and the resources it names — order its ops against other credentials' only once the
// upstream has accepted that exact credential. Until then its ops wait for earlier ops of accepted
// credentials and for its own, and nobody waits for them. On a manual clock, Graph dialect.

import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { graph } from '../dialect/graph.js';
import { type FakeCall, fakeTransport, graphWire } from '../testing/fake-transport.js';
import { graphOp, statusOf } from '../testing/ops.js';
import { pendingOp } from '../testing/pending-op.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { AppState } from './app-state.js';
import { ManualClock } from './clock.js';
import type { PendingOp } from './op.js';
import { Scheduler } from './scheduler.js';

/** A bearer JWT with these claims and no valid signature (the engine never verifies one). */
const jwt = (claims: object) => `Bearer e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
const VICTIM = jwt({ oid: 'victim', n: 1 });
const FORGED = jwt({ oid: 'victim', n: 2 });

function setup() {
  const clock = new ManualClock(0);
  // Graph-shaped: a refused credential's `$batch` is 401 whole after 1 s; others 200 after 10 ms, or
  // after the longest `slow` time of the URLs they carry.
  const refused = new Set<string>([FORGED]);
  const slow = new Map<string, number>();
  const isRefused = (call: FakeCall) => refused.has(call.authorization ?? '');
  const upstream = fakeTransport(clock, { wire: graphWire });
  upstream.latencyMs = (call) =>
    isRefused(call) ? 1_000 : Math.max(10, ...call.paths.map((url) => slow.get(url) ?? 10));
  upstream.respond = (call) =>
    isRefused(call)
      ? { status: 401, headers: {}, body: '{"error":{"code":"InvalidAuthenticationToken"}}' }
      : undefined;
  /** When the first call carrying `url` under `credential` was sent. */
  const sentAt = (credential: string, url: string) =>
    upstream.calls.find((c) => c.authorization === credential && c.paths.includes(url))?.at;
  const scheduler = new Scheduler(
    schedulerOptions({
      dialect: graph,
      upstream,
      clock,
      windowMs: 5,
      maxOps: 20,
      // Without serial chains: a credential's own conflicting ops then leave one after the other.
      dependsOnChains: false,
      batchLimit: { ratePerSec: 1000, burst: 1000 },
    }),
  );
  const submit = (credential: string, op: OpRequest, verified = false) =>
    scheduler.submit({ appId: 'v1.0', credential, op, verified });
  return { clock, upstream, submit, refused, slow, sentAt };
}

describe('a credential the upstream has not accepted (SPEC §8d)', () => {
  it('a forged token claiming the victim’s oid: its writes to /me never hold the victim’s reads of /me', async () => {
    const { clock, sentAt, submit } = setup();
    // The victim is known: one answered call.
    expect(
      statusOf(
        await Promise.all([submit(VICTIM, graphOp('GET', '/me')), clock.advance(20)]).then(([a]) => a),
      ),
    ).toBe(200);
    const forged = submit(FORGED, graphOp('POST', '/me/messages'));
    await clock.advance(1);
    const readAt = clock.now();
    const read = submit(VICTIM, graphOp('GET', '/me/messages'));
    await clock.advance(20);
    // The victim's read left with its window, while the forged write still waits for its 401.
    expect(sentAt(VICTIM, '/me/messages')).toBe(readAt + 5);
    expect(statusOf(await read)).toBe(200);
    await clock.advance(1_000);
    expect(statusOf(await forged)).toBe(401);
  });

  it('nor does a garbage token writing to the victim’s resource by its explicit path', async () => {
    const { clock, sentAt, refused, submit } = setup();
    refused.add('Bearer garbage');
    await Promise.all([submit(VICTIM, graphOp('GET', '/me')), clock.advance(20)]);
    const forged = submit('Bearer garbage', graphOp('POST', '/users/victim/messages'));
    await clock.advance(1);
    const readAt = clock.now();
    const reads = [
      submit(VICTIM, graphOp('GET', '/users/victim/messages')),
      submit(VICTIM, graphOp('GET', '/me/messages')),
    ];
    await clock.advance(20);
    expect((await Promise.all(reads)).map(statusOf)).toEqual([200, 200]);
    expect(sentAt(VICTIM, '/users/victim/messages')).toBe(readAt + 5);
    await clock.advance(1_000);
    expect(statusOf(await forged)).toBe(401);
  });

  it('a refusal teaches nothing: the forged token’s next write is isolated still', async () => {
    const { clock, sentAt, submit } = setup();
    await Promise.all([submit(VICTIM, graphOp('GET', '/me')), clock.advance(20)]);
    const first = submit(FORGED, graphOp('POST', '/me/messages'));
    await clock.advance(1_010);
    expect(statusOf(await first)).toBe(401);
    const second = submit(FORGED, graphOp('POST', '/me/messages'));
    await clock.advance(1);
    const readAt = clock.now();
    const read = submit(VICTIM, graphOp('GET', '/me/messages'));
    await clock.advance(20);
    expect(statusOf(await read)).toBe(200);
    expect(sentAt(VICTIM, '/me/messages')).toBe(readAt + 5);
    await clock.advance(1_000);
    expect(statusOf(await second)).toBe(401);
  });

  it('keeps its own order: its read of a resource waits for its own earlier write', async () => {
    const { clock, sentAt, slow, refused, upstream, submit } = setup();
    refused.clear();
    slow.set('/me/messages', 200);
    const newcomer = jwt({ oid: 'new' });
    const write = submit(newcomer, graphOp('POST', '/me/messages'));
    await clock.advance(1);
    const read = submit(newcomer, graphOp('GET', '/me/messages'));
    await clock.advance(100);
    // Not sent beside the write (Graph runs a parallel batch's requests in any order), nor before its answer.
    expect(upstream.calls.map((s) => s.paths)).toEqual([['/me/messages']]);
    await clock.advance(400);
    expect((await Promise.all([write, read])).map(statusOf)).toEqual([200, 200]);
    expect(sentAt(newcomer, '/me/messages')).toBe(5);
    expect(upstream.calls[1]?.at).toBeGreaterThanOrEqual(205);
  });

  it('stays isolated while its isolated ops are unanswered, though accepted meanwhile', async () => {
    const { clock, slow, refused, upstream, submit } = setup();
    refused.clear();
    slow.set('/users/y', 500);
    const c = jwt({ oid: 'c' });
    const slowWrite = submit(c, graphOp('POST', '/users/y'));
    await clock.advance(10);
    // Another call of c is answered (c is accepted) while its write to /users/y still flies.
    const quick = submit(c, graphOp('GET', '/users/z'));
    await clock.advance(30);
    expect(statusOf(await quick)).toBe(200);
    const read = submit(c, graphOp('GET', '/users/y'));
    await clock.advance(100);
    // Still behind its own write: the read has not left.
    expect(upstream.calls.filter((s) => s.paths.includes('/users/y'))).toHaveLength(1);
    await clock.advance(1_000);
    expect((await Promise.all([slowWrite, read])).map(statusOf)).toEqual([200, 200]);
    expect(upstream.calls.filter((s) => s.paths.includes('/users/y')).at(-1)?.at).toBeGreaterThanOrEqual(505);
  });

  it('once accepted (its isolated ops answered), its writes order other credentials’ reads again', async () => {
    const { clock, sentAt, slow, refused, submit } = setup();
    refused.clear();
    slow.set('/users/x', 300);
    const a = jwt({ oid: 'a' });
    const b = jwt({ oid: 'b' });
    await Promise.all([
      submit(a, graphOp('GET', '/me')),
      submit(b, graphOp('GET', '/me')),
      clock.advance(20),
    ]);
    const write = submit(a, graphOp('POST', '/users/x'));
    await clock.advance(1);
    const read = submit(b, graphOp('GET', '/users/x'));
    await clock.advance(100);
    // b's read waits for a's write: both credentials are accepted, so their ops are ordered together.
    expect(sentAt(b, '/users/x')).toBeUndefined();
    await clock.advance(700);
    expect((await Promise.all([write, read])).map(statusOf)).toEqual([200, 200]);
    expect(sentAt(b, '/users/x')).toBeGreaterThanOrEqual((sentAt(a, '/users/x') ?? 0) + 300);
  });

  it('a credential the proxy verified itself (app-token mode) is ordered with others at once', async () => {
    const { clock, sentAt, slow, refused, submit } = setup();
    refused.clear();
    slow.set('/users/x', 300);
    const write = submit('Bearer a', graphOp('POST', '/users/x'), true);
    await clock.advance(1);
    const read = submit('Bearer b', graphOp('GET', '/users/x'), true);
    await clock.advance(100);
    expect(sentAt('Bearer b', '/users/x')).toBeUndefined();
    await clock.advance(700);
    expect((await Promise.all([write, read])).map(statusOf)).toEqual([200, 200]);
  });

  it('never lets a read join an older read of its credential across a write of it isolated since', () => {
    // The credential was accepted for the first read, forgotten (idle, or evicted) before its write.
    const app = new AppState('v1.0');
    const read = (seq: number, isolated: boolean): PendingOp => ({
      ...pendingOp({ seq, method: 'GET', path: '/users/x', credential: 'c', isolated }),
      readKey: 'c GET /users/x',
    });
    const first = read(1, false);
    app.add(first);
    expect(app.joinable('c GET /users/x')).toBe(first);
    app.add(pendingOp({ seq: 2, method: 'PATCH', path: '/users/x', credential: 'c', isolated: true }));
    expect(app.joinable('c GET /users/x')).toBeUndefined();
  });
});
