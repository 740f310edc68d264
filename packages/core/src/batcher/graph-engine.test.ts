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
class HeldUpstream {
  readonly sent: Array<{ credential: string | undefined; urls: string[] }> = [];
  readonly #held: Array<() => void> = [];

  call = (request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse> => {
    const { requests } = JSON.parse(request.body ?? '{}') as { requests: Array<{ id: string; url: string }> };
    this.sent.push({ credential: authorization, urls: requests.map((r) => r.url) });
    const body = JSON.stringify({ responses: requests.map((r) => ({ id: r.id, status: 201, body: {} })) });
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
    const scheduler = new Scheduler(
      schedulerOptions({ dialect: graph, upstream, clock, windowMs: 5, maxOps: 20 }),
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
