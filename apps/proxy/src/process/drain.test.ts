// SPEC §8, SIGTERM row: the drain answers every call it accepted before the process exits — the
// pass-through and the client's own batch call too, which the engine never queues (issue #32: a drain
// that waited for the engine alone passed every test). lifecycle.ts's drain with the real edge app,
// engine and call tracker, in front of an upstream on loopback that holds its answers until released;
// only process.exit is replaced, so the drain's exit is seen instead of ending the test runner.

import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { MemoryLimiter, UpstreamClient } from '@batch-proxy/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, type MockInstance, vi } from 'vitest';
import { CallTracker } from '../http/calls.js';
import { edgeApp, edgeScheduler } from '../http/edge.fixture.js';
import { drain } from './lifecycle.js';
import { listen } from './server.js';

/** An upstream that holds every call until released, and says when a number of them arrived. */
class HoldUpstream {
  readonly #held: ServerResponse[] = [];
  readonly #waiters: Array<{ count: number; resolve: () => void }> = [];
  readonly server: Server = createServer((req, res) => {
    req.resume();
    this.#held.push(res);
    for (const w of this.#waiters.filter((w) => this.#held.length >= w.count)) w.resolve();
  });

  arrived(count: number): Promise<void> {
    if (this.#held.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  release(): void {
    for (const res of this.#held.splice(0)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"held":true}');
    }
  }
}

let hold: HoldUpstream;
let upstreamUrl: string;
let exit: MockInstance<typeof process.exit>;
const exitCodeBefore = process.exitCode;

beforeAll(async () => {
  hold = new HoldUpstream();
  hold.server.listen(0, '127.0.0.1');
  await once(hold.server, 'listening');
  upstreamUrl = `http://127.0.0.1:${(hold.server.address() as AddressInfo).port}`;
});

afterEach(() => {
  exit?.mockRestore();
  process.exitCode = exitCodeBefore;
});

afterAll(() => {
  hold.server.closeAllConnections();
  hold.server.close();
});

async function startEdge() {
  const upstream = new UpstreamClient({ url: upstreamUrl, timeoutMs: 10_000 });
  const limiter = new MemoryLimiter();
  const engine = edgeScheduler(upstream, { limiter, maxWaitMs: 10_000, leaseMs: 11_000 });
  const calls = new CallTracker();
  let accepting = true;
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }),
  );
  const app = edgeApp(engine, {
    upstream,
    logger,
    metrics: undefined,
    traced: false,
    accepting: () => accepting,
    calls,
  });
  const data = await listen(app, { port: 0, host: '127.0.0.1' });
  const admin = await listen(
    (_req, res) => {
      res.end();
    },
    { port: 0, host: '127.0.0.1' },
  );
  const run = () =>
    drain('SIGTERM', {
      logger,
      graceMs: 10_000,
      stopAccepting: () => {
        accepting = false;
      },
      engine,
      calls,
      data: data.server,
      admin: admin.server,
      release: [],
      shutdown: [() => upstream.destroy(), () => limiter.close()],
    });
  return { engine, calls, data, admin, lines, run };
}

const answerOf = async (res: Response) => ({ status: res.status, body: (await res.json()) as unknown });

describe('drain', () => {
  it('answers the admitted pass-through and client-batch calls before it closes the listener and exits', async () => {
    const edge = await startEdge();
    // What the process would see at its end: how many accepted calls were still unanswered.
    const exited = new Promise<{ code: unknown; open: number }>((resolve) => {
      exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
        resolve({ code, open: edge.calls.count });
        return undefined as never;
      });
    });
    const url = (path: string) => `http://127.0.0.1:${edge.data.port}${path}`;
    const auth = { authorization: 'Bearer sk_drain' };
    const answered = [
      fetch(url('/v1/app1/users/u1'), { headers: { ...auth, 'x-batch-bypass': '1' } }),
      fetch(url('/v1/app1/batch'), {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '[[0,"GET","/users/u1",{}]]',
      }),
    ].map((call) => call.then(answerOf));
    await hold.arrived(2);
    // Both are open calls, though the engine holds neither.
    expect(edge.calls.count).toBe(2);
    expect(edge.engine.pending).toBe(0);

    const drained = edge.run();
    // The engine has nothing to wait for: once its drain has settled and the promise callbacks after
    // it have run, a drain that did not wait for these calls would have closed the listener.
    await edge.engine.drain();
    await new Promise((resolve) => setImmediate(resolve));
    expect(edge.data.server.listening).toBe(true);
    expect(exit).not.toHaveBeenCalled();
    // Still listening, but not taking new calls.
    const late = await fetch(url('/v1/app1/users/u2'), { headers: { ...auth, 'x-batch-bypass': '1' } });
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('1');
    await late.arrayBuffer();

    hold.release();
    expect(await Promise.all(answered)).toEqual([
      { status: 200, body: { held: true } },
      { status: 200, body: { held: true } },
    ]);
    await drained;
    // Exit 0, with every accepted call's answer written: none was cut.
    expect(await exited).toEqual({ code: 0, open: 0 });
    expect(edge.data.server.listening).toBe(false);
    expect(edge.lines.join('')).not.toContain('grace period over');
  });
});
