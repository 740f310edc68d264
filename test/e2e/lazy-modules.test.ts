// The default embedded mode (no Redis configured) must not load the Redis client: ioredis and its
// dependencies were a fifth of start-up time and idle memory (issue #17). The built proxy runs with a
// loader hook (module-probe.mjs) that names every package it loads; the Redis run shows the probe
// sees ioredis when it is used, so the embedded run's silence means something.

import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';

const PROBE = fileURLToPath(new URL('./module-probe.mjs', import.meta.url));
const SECRET = 'sk_lazy';

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

/** Starts the proxy under the probe, makes one call, stops it; resolves with the packages it loaded. */
async function packagesLoaded(env: Record<string, string>): Promise<string[]> {
  const upstream = await startFakeUpstream({ apps: { app1: SECRET } });
  cleanup.push(() => upstream.close());
  const proxy: ProxyProcess = await startProxyProcess(
    { UPSTREAM_URL: upstream.url, LOG_LEVEL: 'warn', ...env },
    { nodeArgs: ['--import', PROBE] },
  );
  const res = await fetch(`${proxy.url}/v1/app1/users/u1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'u1' }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  // 'close' comes after both pipes are drained, so every probe line has been read by then.
  const closed = new Promise((resolve) => proxy.child.once('close', resolve));
  await proxy.stop();
  await closed;
  return proxy
    .logs()
    .split('\n')
    .flatMap((line) => (line.startsWith('module-probe: ') ? [line.slice('module-probe: '.length)] : []));
}

describe('modules the proxy loads', () => {
  it('loads no Redis client in the default embedded mode', async () => {
    const loaded = await packagesLoaded({});
    expect(loaded).toContain('pino'); // the probe works in this run
    expect(loaded).not.toContain('ioredis');
  });

  it('loads ioredis, and rate limits through Redis, when REDIS_URL is set', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const loaded = await packagesLoaded({ REDIS_URL: redis.url });
    expect(loaded).toContain('ioredis');
  });
});
