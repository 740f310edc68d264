// SPEC §8d, a forged token delays nobody but itself: what a credential claims (Graph's `oid`, for
// `/me`) — and the resources it names — order its ops against other credentials' only once the
// upstream has accepted that exact credential. Until then its ops wait for earlier ops of accepted
// credentials and for its own, and nobody waits for them. On a manual clock, Graph dialect.

import { describe, expect, it } from 'vitest';
import type { OpRequest, UpstreamRequest } from '../dialect/dialect.js';
import { graph } from '../dialect/graph.js';
import { pendingOp } from '../testing/pending-op.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import type { BufferedResponse } from '../upstream/client.js';
import { AppState } from './app-state.js';
import { ManualClock } from './clock.js';
import type { PendingOp } from './op.js';
import { Scheduler } from './scheduler.js';

/** A bearer JWT with these claims and no valid signature (the engine never verifies one). */
const jwt = (claims: object) => `Bearer e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
const VICTIM = jwt({ oid: 'victim', n: 1 });
const FORGED = jwt({ oid: 'victim', n: 2 });

interface Sent {
  at: number;
  credential: string;
  urls: string[];
}

/** Graph-shaped: a refused credential's `$batch` is 401 whole after `refuseMs`; others 200 after 10 ms. */
class Upstream {
  readonly sent: Sent[] = [];
  refused = new Set<string>([FORGED]);
  refuseMs = 1_000;
  /** Per URL, how long its batch takes (default 10 ms). */
  slow = new Map<string, number>();

  constructor(private readonly clock: ManualClock) {}

  call = async (request: UpstreamRequest, authorization?: string): Promise<BufferedResponse> => {
    const { requests } = JSON.parse(request.body ?? '{}') as {
      requests: Array<{ id: string; url: string }>;
    };
    const credential = authorization ?? '';
    this.sent.push({ at: this.clock.now(), credential, urls: requests.map((r) => r.url) });
    const refused = this.refused.has(credential);
    const ms = refused ? this.refuseMs : Math.max(10, ...requests.map((r) => this.slow.get(r.url) ?? 10));
    await new Promise((r) => this.clock.setTimeout(() => r(undefined), ms));
    if (refused) return { status: 401, headers: {}, body: '{"error":{"code":"InvalidAuthenticationToken"}}' };
    const responses = requests.map((r) => ({ id: r.id, status: 200, body: {} }));
    return { status: 200, headers: {}, body: JSON.stringify({ responses }) };
  };

  /** When the first call carrying `url` under `credential` was sent. */
  sentAt(credential: string, url: string): number | undefined {
    return this.sent.find((s) => s.credential === credential && s.urls.includes(url))?.at;
  }
}

const get = (path: string): OpRequest => ({
  method: 'GET',
  path,
  query: {},
  body: undefined,
  apiVersion: undefined,
  headers: {},
  search: '',
});
const post = (path: string): OpRequest => ({
  ...get(path),
  method: 'POST',
  body: '{}',
  headers: { 'content-type': 'application/json' },
});

function setup() {
  const clock = new ManualClock(0);
  const upstream = new Upstream(clock);
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
  return { clock, upstream, submit };
}

const status = (a: { kind: string; status?: number; error?: { status: number } }) =>
  a.kind === 'result' ? a.status : a.error?.status;

describe('a credential the upstream has not accepted (SPEC §8d)', () => {
  it('a forged token claiming the victim’s oid: its writes to /me never hold the victim’s reads of /me', async () => {
    const { clock, upstream, submit } = setup();
    // The victim is known: one answered call.
    expect(status(await Promise.all([submit(VICTIM, get('/me')), clock.advance(20)]).then(([a]) => a))).toBe(
      200,
    );
    const forged = submit(FORGED, post('/me/messages'));
    await clock.advance(1);
    const readAt = clock.now();
    const read = submit(VICTIM, get('/me/messages'));
    await clock.advance(20);
    // The victim's read left with its window, while the forged write still waits for its 401.
    expect(upstream.sentAt(VICTIM, '/me/messages')).toBe(readAt + 5);
    expect(status(await read)).toBe(200);
    await clock.advance(1_000);
    expect(status(await forged)).toBe(401);
  });

  it('nor does a garbage token writing to the victim’s resource by its explicit path', async () => {
    const { clock, upstream, submit } = setup();
    upstream.refused.add('Bearer garbage');
    await Promise.all([submit(VICTIM, get('/me')), clock.advance(20)]);
    const forged = submit('Bearer garbage', post('/users/victim/messages'));
    await clock.advance(1);
    const readAt = clock.now();
    const reads = [submit(VICTIM, get('/users/victim/messages')), submit(VICTIM, get('/me/messages'))];
    await clock.advance(20);
    expect((await Promise.all(reads)).map(status)).toEqual([200, 200]);
    expect(upstream.sentAt(VICTIM, '/users/victim/messages')).toBe(readAt + 5);
    await clock.advance(1_000);
    expect(status(await forged)).toBe(401);
  });

  it('a refusal teaches nothing: the forged token’s next write is isolated still', async () => {
    const { clock, upstream, submit } = setup();
    await Promise.all([submit(VICTIM, get('/me')), clock.advance(20)]);
    const first = submit(FORGED, post('/me/messages'));
    await clock.advance(1_010);
    expect(status(await first)).toBe(401);
    const second = submit(FORGED, post('/me/messages'));
    await clock.advance(1);
    const readAt = clock.now();
    const read = submit(VICTIM, get('/me/messages'));
    await clock.advance(20);
    expect(status(await read)).toBe(200);
    expect(upstream.sentAt(VICTIM, '/me/messages')).toBe(readAt + 5);
    await clock.advance(1_000);
    expect(status(await second)).toBe(401);
  });

  it('keeps its own order: its read of a resource waits for its own earlier write', async () => {
    const { clock, upstream, submit } = setup();
    upstream.refused.clear();
    upstream.slow.set('/me/messages', 200);
    const newcomer = jwt({ oid: 'new' });
    const write = submit(newcomer, post('/me/messages'));
    await clock.advance(1);
    const read = submit(newcomer, get('/me/messages'));
    await clock.advance(100);
    // Not sent beside the write (Graph runs a parallel batch's requests in any order), nor before its answer.
    expect(upstream.sent.map((s) => s.urls)).toEqual([['/me/messages']]);
    await clock.advance(400);
    expect((await Promise.all([write, read])).map(status)).toEqual([200, 200]);
    expect(upstream.sentAt(newcomer, '/me/messages')).toBe(5);
    expect(upstream.sent[1]?.at).toBeGreaterThanOrEqual(205);
  });

  it('stays isolated while its isolated ops are unanswered, though accepted meanwhile', async () => {
    const { clock, upstream, submit } = setup();
    upstream.refused.clear();
    upstream.slow.set('/users/y', 500);
    const c = jwt({ oid: 'c' });
    const slowWrite = submit(c, post('/users/y'));
    await clock.advance(10);
    // Another call of c is answered (c is accepted) while its write to /users/y still flies.
    const quick = submit(c, get('/users/z'));
    await clock.advance(30);
    expect(status(await quick)).toBe(200);
    const read = submit(c, get('/users/y'));
    await clock.advance(100);
    // Still behind its own write: the read has not left.
    expect(upstream.sent.filter((s) => s.urls.includes('/users/y'))).toHaveLength(1);
    await clock.advance(1_000);
    expect((await Promise.all([slowWrite, read])).map(status)).toEqual([200, 200]);
    expect(upstream.sent.filter((s) => s.urls.includes('/users/y')).at(-1)?.at).toBeGreaterThanOrEqual(505);
  });

  it('once accepted (its isolated ops answered), its writes order other credentials’ reads again', async () => {
    const { clock, upstream, submit } = setup();
    upstream.refused.clear();
    upstream.slow.set('/users/x', 300);
    const a = jwt({ oid: 'a' });
    const b = jwt({ oid: 'b' });
    await Promise.all([submit(a, get('/me')), submit(b, get('/me')), clock.advance(20)]);
    const write = submit(a, post('/users/x'));
    await clock.advance(1);
    const read = submit(b, get('/users/x'));
    await clock.advance(100);
    // b's read waits for a's write: both credentials are accepted, so their ops are ordered together.
    expect(upstream.sentAt(b, '/users/x')).toBeUndefined();
    await clock.advance(700);
    expect((await Promise.all([write, read])).map(status)).toEqual([200, 200]);
    expect(upstream.sentAt(b, '/users/x')).toBeGreaterThanOrEqual(
      (upstream.sentAt(a, '/users/x') ?? 0) + 300,
    );
  });

  it('a credential the proxy verified itself (app-token mode) is ordered with others at once', async () => {
    const { clock, upstream, submit } = setup();
    upstream.refused.clear();
    upstream.slow.set('/users/x', 300);
    const write = submit('Bearer a', post('/users/x'), true);
    await clock.advance(1);
    const read = submit('Bearer b', get('/users/x'), true);
    await clock.advance(100);
    expect(upstream.sentAt('Bearer b', '/users/x')).toBeUndefined();
    await clock.advance(700);
    expect((await Promise.all([write, read])).map(status)).toEqual([200, 200]);
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
