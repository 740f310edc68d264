// The engine with the Graph dialect: ordering (SPEC §5), where `/me/…` is a different resource for
// each caller, so two users' writes to their own mailbox do not wait for each other while one user's
// still do; and read collapsing, where the query text and carried headers are part of the read.

import { describe, expect, it } from 'vitest';
import type { OpRequest, UpstreamRequest } from '../dialect/dialect.js';
import { graph } from '../dialect/graph.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import type { BufferedResponse } from '../upstream/client.js';
import { ManualClock } from './clock.js';
import { Scheduler } from './scheduler.js';

/** Holds every call until `release()`; records who sent what. */
interface Sent {
  id: string;
  method: string;
  url: string;
  body?: { n?: number };
  dependsOn?: string[];
}

class HeldUpstream {
  readonly sent: Array<{ credential: string | undefined; urls: string[] }> = [];
  /** Every batch as sent: `method url#n` and dependsOn per request. */
  readonly batches: Array<Array<[string, string[] | undefined]>> = [];
  /** Each request's status (Graph's serial-chain rule applied: after a failure, 424). */
  status: (r: Sent) => number = () => 201;
  readonly #held: Array<() => void> = [];

  call = (request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse> => {
    const { requests } = JSON.parse(request.body ?? '{}') as { requests: Sent[] };
    this.sent.push({ credential: authorization, urls: requests.map((r) => r.url) });
    this.batches.push(requests.map((r) => [`${r.method} ${r.url}#${r.body?.n ?? ''}`, r.dependsOn]));
    let failed = false;
    const responses = requests.map((r) => {
      const status = failed && r.dependsOn ? 424 : this.status(r);
      if (status >= 400) failed = true;
      return { id: r.id, status, body: {} };
    });
    const body = JSON.stringify({ responses: responses.reverse() });
    return new Promise((resolve) => this.#held.push(() => resolve({ status: 200, headers: {}, body })));
  };

  release(): void {
    for (const answer of this.#held.splice(0)) answer();
  }
}

const post = (path: string): OpRequest => ({
  method: 'POST',
  path,
  query: {},
  body: '{}',
  apiVersion: undefined,
  headers: { 'content-type': 'application/json' },
  search: '',
});

describe('graph ordering of /me', () => {
  it('lets two users write to their own /me at once, and keeps one user’s writes in order', async () => {
    const clock = new ManualClock(0);
    const upstream = new HeldUpstream();
    // Without chains, so that one user's second write waits for the first one's answer.
    const scheduler = new Scheduler(
      schedulerOptions({ dialect: graph, upstream, clock, windowMs: 5, maxOps: 20, dependsOnChains: false }),
    );
    const submit = (credential: string) =>
      scheduler.submit({ appId: 'v1.0', credential, op: post('/me/messages') });
    const answers = [submit('Bearer a'), submit('Bearer b'), submit('Bearer a')];
    await clock.advance(5);
    // a's first and b's leave together; a's second waits for a's first answer.
    expect(upstream.sent).toEqual([
      { credential: 'Bearer a', urls: ['/me/messages'] },
      { credential: 'Bearer b', urls: ['/me/messages'] },
    ]);
    upstream.release();
    await clock.advance(5);
    expect(upstream.sent).toHaveLength(3);
    expect(upstream.sent[2]?.credential).toBe('Bearer a');
    upstream.release();
    expect((await Promise.all(answers)).map((a) => a.kind === 'result' && a.status)).toEqual([201, 201, 201]);
  });
});

describe('graph read collapsing', () => {
  it('collapses identical reads only: the query text and carried headers tell them apart', async () => {
    const clock = new ManualClock(0);
    const upstream = new HeldUpstream();
    const scheduler = new Scheduler(
      schedulerOptions({ dialect: graph, upstream, clock, windowMs: 5, maxOps: 20 }),
    );
    const read = (search: string, headers: Record<string, string>) =>
      scheduler.submit({
        appId: 'v1.0',
        credential: 'Bearer a',
        op: {
          method: 'GET',
          path: '/users',
          query: {},
          body: undefined,
          apiVersion: undefined,
          headers,
          search,
        },
      });
    const answers = [
      read('?$count=true', { consistencylevel: 'eventual' }),
      read('?$count=true', { consistencylevel: 'eventual' }),
      read('?$count=true', {}),
      read('?$count=false', { consistencylevel: 'eventual' }),
    ];
    await clock.advance(5);
    expect(upstream.sent).toEqual([
      { credential: 'Bearer a', urls: ['/users?$count=true', '/users?$count=true', '/users?$count=false'] },
    ]);
    upstream.release();
    expect(await Promise.all(answers)).toHaveLength(4);
  });
});

const write = (path: string, n: number): OpRequest => ({ ...post(path), body: JSON.stringify({ n }) });

describe('graph serial chains (dependsOn)', () => {
  function engine() {
    const clock = new ManualClock(0);
    const upstream = new HeldUpstream();
    const scheduler = new Scheduler(
      schedulerOptions({ dialect: graph, upstream, clock, windowMs: 5, maxOps: 20 }),
    );
    // Verified: trusted at once, so other groups' ops are ordered with these (SPEC §8d).
    const submit = (op: OpRequest, credential = 'Bearer a') =>
      scheduler.submit({ appId: 'v1.0', credential, op, verified: true });
    return { clock, upstream, submit };
  }

  it('sends conflicting writes of one group as one serial chain in arrival order', async () => {
    const { clock, upstream, submit } = engine();
    const answers = [
      submit(write('/me/messages', 1)),
      submit(write('/me/messages', 2)),
      submit({ ...post('/users/x'), method: 'GET', body: undefined, headers: {} }),
      submit(write('/me/messages', 3)),
    ];
    await clock.advance(5);
    expect(upstream.batches).toEqual([
      [
        ['POST /me/messages#1', undefined],
        ['POST /me/messages#2', ['0']],
        ['GET /users/x#', ['1']],
        ['POST /me/messages#3', ['2']],
      ],
    ]);
    upstream.release();
    expect((await Promise.all(answers)).map((a) => a.kind === 'result' && a.status)).toEqual([
      201, 201, 201, 201,
    ]);
  });

  it('answers a failed head as the upstream did and sends the 424 tail again, not to its callers', async () => {
    const { clock, upstream, submit } = engine();
    upstream.status = (r) => (r.body?.n === 1 ? 400 : 201);
    const answers = [1, 2, 3].map((n) => submit(write('/me/messages', n)));
    await clock.advance(5);
    upstream.release();
    await clock.advance(0);
    // The tail did not run: it goes again at once (a 424 pauses nothing), still in order.
    expect(upstream.batches).toEqual([
      [
        ['POST /me/messages#1', undefined],
        ['POST /me/messages#2', ['0']],
        ['POST /me/messages#3', ['1']],
      ],
      [
        ['POST /me/messages#2', undefined],
        ['POST /me/messages#3', ['0']],
      ],
    ]);
    upstream.release();
    const got = await Promise.all(answers);
    expect(got.map((a) => a.kind === 'result' && a.status)).toEqual([400, 201, 201]);
    // Never executed, so the 424 did not count against the tail's attempts.
    expect(got.map((a) => a.kind === 'result' && a.timing.attempts)).toEqual([1, 1, 1]);
  });

  it('never chains an op behind an unanswered op of another group', async () => {
    const { clock, upstream, submit } = engine();
    void submit(write('/users/x', 1), 'Bearer b');
    await clock.advance(5);
    // b's write flies; a's ops on /users/x must wait for it, a's own chain does not include them.
    const answers = [
      submit(write('/users/x', 2)),
      submit(write('/users/x', 3)),
      submit(write('/users/y', 4)),
    ];
    await clock.advance(5);
    expect(upstream.batches.slice(1)).toEqual([[['POST /users/y#4', undefined]]]);
    upstream.release();
    await clock.advance(5);
    expect(upstream.batches.slice(2)).toEqual([
      [
        ['POST /users/x#2', undefined],
        ['POST /users/x#3', ['0']],
      ],
    ]);
    upstream.release();
    expect(await Promise.all(answers)).toHaveLength(3);
  });
});
