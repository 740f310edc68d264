// Redis Sentinel (SPEC §7 fleet mode): with REDIS_SENTINELS the proxy finds the primary through a
// real sentinel process and shares its buckets there.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { freePort } from '../harness/ports.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';

let upstream: FakeUpstream;
let redis: RedisProcess;
let sentinel: ChildProcess;
let sentinelPort: number;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apps: { app1: 'sk_s' } });
  redis = await startRedis();
  sentinelPort = await freePort();
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
  sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Ready once it monitors the primary (its own log line says so).
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`sentinel did not start:\n${out}`)), 10_000);
    sentinel.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('+monitor master primary1')) {
        clearTimeout(timer);
        resolve();
      }
    });
    sentinel.once('exit', (code) => reject(new Error(`sentinel exited with ${code}:\n${out}`)));
  });
  proxy = await startProxyProcess({
    UPSTREAM_URL: upstream.url,
    REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
    REDIS_SENTINEL_NAME: 'primary1',
    LOG_LEVEL: 'warn',
  });
});

afterAll(async () => {
  await proxy?.stop();
  sentinel?.kill('SIGKILL');
  await redis?.stop();
  await upstream?.close();
});

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
