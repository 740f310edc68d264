// What the data listener's tests share (not built: tsconfig.build.json leaves *.fixture.ts out): a real
// upstream server on loopback, the real engine with an in-process limiter in front of it, and a stream
// whose JSON lines a test can read.

import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { MemoryLimiter, Scheduler, type SchedulerOptions, talkjs, UpstreamClient } from '@batch-proxy/core';
import { type AppDeps, createApp } from './app.js';
import { passthroughAuth } from './auth.js';

export interface LoopbackUpstream {
  readonly server: Server;
  /** The engine's client of it. */
  readonly client: UpstreamClient;
  /** Closes the client, then the server. */
  close(): Promise<void>;
}

/** An upstream on 127.0.0.1 that answers with `handler`. */
export async function loopbackUpstream(handler: RequestListener): Promise<LoopbackUpstream> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new UpstreamClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 5_000 });
  return {
    server,
    client,
    close: async () => {
      await client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The real engine as these tests run it: TalkJS, callers' Authorization as the credential, no window,
 * limits no test reaches and one attempt; `options` states what a test is about.
 */
export function edgeScheduler(upstream: UpstreamClient, options: Partial<SchedulerOptions> = {}): Scheduler {
  return new Scheduler({
    dialect: talkjs,
    limiter: new MemoryLimiter(),
    upstream,
    upstreamId: upstream.origin,
    windowMs: 0,
    maxOps: 10,
    maxWaitMs: 5_000,
    queueMaxOps: 100,
    batchLimit: { ratePerSec: 100, burst: 100 },
    restLimit: undefined,
    batchOpsSpendRest: false,
    singleOpDirect: false,
    maxAttempts: 1,
    leaseMs: 6_000,
    authorize: passthroughAuth.authorize,
    ...options,
  });
}

/**
 * The data listener over `scheduler` as these tests run it: TalkJS, the caller's Authorization
 * forwarded as its credential, a 10 kB body limit, always accepting; `deps` says the rest.
 */
export function edgeApp(
  scheduler: Scheduler,
  deps: Pick<AppDeps, 'upstream' | 'logger' | 'metrics'> & Partial<AppDeps>,
): RequestListener {
  return createApp({
    dialect: talkjs,
    scheduler,
    bodyLimitBytes: 10_000,
    auth: 'forward',
    credentialOf: passthroughAuth.credentialOf,
    accepting: () => true,
    ...deps,
  });
}

/** A stream for pino or the access log: each line written lands in `lines`, parsed as JSON. */
export function jsonLines(lines: Array<Record<string, unknown>>): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
}
