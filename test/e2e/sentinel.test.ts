// Redis Sentinel (SPEC §7 fleet mode): with REDIS_SENTINELS the proxy finds the primary through a
// real sentinel process and shares its buckets there.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import type { RedisProcess } from '../harness/redis.js';
import { useProxy } from '../harness/use.js';

let sentinel: ChildProcess | undefined;

// Registered before useProxy's, so it runs after the proxy has stopped.
afterAll(() => {
  sentinel?.kill('SIGKILL');
});

/** Starts a sentinel that monitors `redis` as `primary1`; resolves with its port once it does. */
async function startSentinel(redis: RedisProcess): Promise<number> {
  const sentinelPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor primary1 127.0.0.1 ${redis.port} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  sentinel = child;
  // Ready once it monitors the primary (its own log line says so).
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`sentinel did not start:\n${out}`)), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('+monitor master primary1')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`sentinel exited with ${code}:\n${out}`)));
  });
  return sentinelPort;
}

const { proxy, redis } = useProxy(
  async ({ redis }) => ({
    REDIS_SENTINELS: `127.0.0.1:${await startSentinel(redis)}`,
    REDIS_SENTINEL_NAME: 'primary1',
    LOG_LEVEL: 'warn',
  }),
  { upstream: { apps: { app1: 'sk_s' } }, redis: true },
);

describe('REDIS_SENTINELS', () => {
  it('keeps the shared buckets on the primary the sentinel names', async () => {
    const res = await fetch(`${proxy.url}/v1/app1/users/s1`, {
      method: 'PUT',
      headers: { authorization: 'Bearer sk_s', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys('batch-proxy:ratelimit:*');
      expect(keys.some((k) => k.endsWith('|app1|batch}'))).toBe(true);
    } finally {
      client.disconnect();
    }
    expect(proxy.logs()).not.toMatch(/redis unreachable/);
  });
});
