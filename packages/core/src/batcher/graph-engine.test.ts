// The engine with the Graph dialect: ordering (SPEC §5), where `/me/…` is a different resource for
// each caller, so two users' writes to their own mailbox do not wait for each other while one user's
// still do; and read collapsing, where the query text and carried headers are part of the read.

import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { graph } from '../dialect/graph.js';
import { type FakeOp, fakeTransport, graphWire } from '../testing/fake-transport.js';
import { graphOp } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

/** The op's `n`, the number a test's write carries in its body. */
const nOf = (op: FakeOp) => (op.body as { n?: number } | undefined)?.n;

/**
 * The engine speaking Graph on a manual clock, against an upstream that holds every call until
 * `release()` and answers each request 201 (Graph's serial-chain rule applied: after a failure, 424),
 * in reverse order. `sent()`: who sent which urls; `batches()`: every batch as sent, `method url#n`
 * and dependsOn per request.
 */
function engine(overrides: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock(0);
  const upstream = fakeTransport(clock, { wire: graphWire });
  upstream.holding = true;
  upstream.order = (ops) => [...ops].reverse();
  upstream.answerOp = () => ({ status: 201, body: {} });
  const scheduler = new Scheduler(
    schedulerOptions({ dialect: graph, upstream, clock, windowMs: 5, maxOps: 20, ...overrides }),
  );
  const sent = () => upstream.calls.map((c) => ({ credential: c.authorization, urls: c.paths }));
  const batches = () =>
    upstream.calls.map((c) => c.ops.map((o) => [`${o.method} ${o.path}#${nOf(o) ?? ''}`, o.dependsOn]));
  return { clock, upstream, scheduler, sent, batches };
}

describe('graph ordering of /me', () => {
  it('lets two users write to their own /me at once, and keeps one user’s writes in order', async () => {
    // Without chains, so that one user's second write waits for the first one's answer.
    const { clock, upstream, scheduler, sent } = engine({ dependsOnChains: false });
    const submit = (credential: string) =>
      scheduler.submit({ appId: 'v1.0', credential, op: graphOp('POST', '/me/messages') });
    const answers = [submit('Bearer a'), submit('Bearer b'), submit('Bearer a')];
    await clock.advance(5);
    // a's first and b's leave together; a's second waits for a's first answer.
    expect(sent()).toEqual([
      { credential: 'Bearer a', urls: ['/me/messages'] },
      { credential: 'Bearer b', urls: ['/me/messages'] },
    ]);
    upstream.release();
    await clock.advance(5);
    expect(sent()).toHaveLength(3);
    expect(sent()[2]?.credential).toBe('Bearer a');
    upstream.release();
    expect((await Promise.all(answers)).map((a) => a.kind === 'result' && a.status)).toEqual([201, 201, 201]);
  });
});

describe('graph read collapsing', () => {
  it('collapses identical reads only: the query text and carried headers tell them apart', async () => {
    const { clock, upstream, scheduler, sent } = engine();
    const read = (search: string, headers: Record<string, string>) =>
      scheduler.submit({
        appId: 'v1.0',
        credential: 'Bearer a',
        op: graphOp('GET', '/users', { search, headers }),
      });
    const answers = [
      read('?$count=true', { consistencylevel: 'eventual' }),
      read('?$count=true', { consistencylevel: 'eventual' }),
      read('?$count=true', {}),
      read('?$count=false', { consistencylevel: 'eventual' }),
    ];
    await clock.advance(5);
    expect(sent()).toEqual([
      { credential: 'Bearer a', urls: ['/users?$count=true', '/users?$count=true', '/users?$count=false'] },
    ]);
    upstream.release();
    expect(await Promise.all(answers)).toHaveLength(4);
  });
});

const write = (path: string, n: number): OpRequest => ({
  ...graphOp('POST', path),
  body: JSON.stringify({ n }),
});

describe('graph serial chains (dependsOn)', () => {
  function chains() {
    const env = engine();
    // Verified: trusted at once, so other groups' ops are ordered with these (SPEC §8d).
    const submit = (op: OpRequest, credential = 'Bearer a') =>
      env.scheduler.submit({ appId: 'v1.0', credential, op, verified: true });
    return { ...env, submit };
  }

  it('sends conflicting writes of one group as one serial chain in arrival order', async () => {
    const { clock, upstream, batches, submit } = chains();
    const answers = [
      submit(write('/me/messages', 1)),
      submit(write('/me/messages', 2)),
      submit(graphOp('GET', '/users/x')),
      submit(write('/me/messages', 3)),
    ];
    await clock.advance(5);
    expect(batches()).toEqual([
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
    const { clock, upstream, batches, submit } = chains();
    upstream.answerOp = (o) => ({ status: nOf(o) === 1 ? 400 : 201, body: {} });
    const answers = [1, 2, 3].map((n) => submit(write('/me/messages', n)));
    await clock.advance(5);
    upstream.release();
    await clock.advance(0);
    // The tail did not run: it goes again at once (a 424 pauses nothing), still in order.
    expect(batches()).toEqual([
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
    const { clock, upstream, batches, submit } = chains();
    void submit(write('/users/x', 1), 'Bearer b');
    await clock.advance(5);
    // b's write flies; a's ops on /users/x must wait for it, a's own chain does not include them.
    const answers = [
      submit(write('/users/x', 2)),
      submit(write('/users/x', 3)),
      submit(write('/users/y', 4)),
    ];
    await clock.advance(5);
    expect(batches().slice(1)).toEqual([[['POST /users/y#4', undefined]]]);
    upstream.release();
    await clock.advance(5);
    expect(batches().slice(2)).toEqual([
      [
        ['POST /users/x#2', undefined],
        ['POST /users/x#3', ['0']],
      ],
    ]);
    upstream.release();
    expect(await Promise.all(answers)).toHaveLength(3);
  });
});
