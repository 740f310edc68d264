// What the Sentinel tests share (not built: tsconfig.build.json leaves *.fixture.ts out): real
// `redis-server --sentinel` processes, each monitoring one master from a configuration epoch of the
// test's choice, and the hello message by which a sentinel learns a newer configuration from a peer.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisServer } from '@batch-proxy/core/testing';
import { Redis } from 'ioredis';
import type { HostPort } from './sentinel.js';

export interface Sentinel extends HostPort {
  out(): string;
  /** Resolves when its output, from now on, holds `text`. */
  line(text: string, timeoutMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Kills every sentinel started so far. */
export function stopSentinels(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * A sentinel monitoring `master` under `name` (quorum 1) from configuration epoch `epoch`, on `port`
 * or a free one. It never fails its master over (down-after 60 s); sentinels monitoring different
 * masters never hear of each other.
 */
export async function startSentinel(
  name: string,
  master: RedisServer,
  epoch: number,
  port?: number,
): Promise<Sentinel> {
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'unit-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 60000`,
      `sentinel config-epoch ${name} ${epoch}`,
      `sentinel current-epoch ${epoch}`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  const take = (chunk: Buffer) => {
    out += chunk.toString();
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const line = (text: string, timeoutMs = 5_000, from = out.length) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!out.slice(from).includes(text)) return;
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve();
      };
      const timer = setTimeout(() => {
        child.stdout?.off('data', check);
        reject(new Error(`sentinel ${port}: no ${text} within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
      child.stdout?.on('data', check);
      check();
    });
  await line(`+monitor master ${name}`, 10_000, 0);
  return { host: '127.0.0.1', port, out: () => out, line };
}

/**
 * What a sentinel that won an election at `epoch` tells its peers: a hello naming `to` as the master
 * `name`, published on the master `on` (which the sentinels watching it subscribe to). The sender's
 * address is a closed port: the receiver notes a peer it cannot reach, which changes nothing else.
 */
export async function publishHello(
  name: string,
  on: RedisServer,
  to: RedisServer,
  epoch: number,
): Promise<void> {
  const redis = new Redis(on.url);
  try {
    // The sentinels watching `on` must be subscribed before the hello is sent.
    for (let tries = 0; tries < 100; tries++) {
      const [, subscribers] = (await redis.call('PUBSUB', 'NUMSUB', '__sentinel__:hello')) as [
        string,
        number,
      ];
      if (subscribers > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const peer = `127.0.0.1,${await freePort()},${'f'.repeat(40)},${epoch}`;
    await redis.publish('__sentinel__:hello', `${peer},${name},127.0.0.1,${to.port},${epoch}`);
  } finally {
    redis.disconnect();
  }
}
