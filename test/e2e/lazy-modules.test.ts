// The default embedded mode (no Redis configured) must not load the Redis client: ioredis and its
// dependencies were a fifth of start-up time and idle memory. The built proxy runs with a
// loader hook (module-probe.mjs) that names every package it loads and every file of the build; the
// Redis and tracing runs show the probe sees the on-demand parts when they are used, so the embedded
// run's silence means something.
// The build is one bundle (apps/proxy/bundle.mjs): what every mode uses is inside dist/main.js, so
// Node's loader links one module instead of ~70; the Redis limiter and the trace SDK are chunks of
// their own, loaded on demand with their packages.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';
import { useCleanup } from '../harness/use.js';

const PROBE = fileURLToPath(new URL('./module-probe.mjs', import.meta.url));
const SECRET = 'sk_lazy';

const cleanup = useCleanup();

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
  it('loads one bundled module, with no Redis client and no trace SDK, in the default embedded mode', async () => {
    const loaded = await packagesLoaded({});
    // Only the bundle: no chunk, and no package through the module loader (undici's Pool is in the
    // bundle; its llhttp WebAssembly is `require`d on the first upstream call, which these hooks do not
    // see).
    expect(loaded).toEqual(['proxy:main.js']);
  });

  it('loads ioredis, and rate limits through Redis, when REDIS_URL is set', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const loaded = await packagesLoaded({ REDIS_URL: redis.url });
    expect(loaded).toContain('proxy:redis.js');
    expect(loaded).toContain('ioredis');
    expect(loaded).not.toContain('@opentelemetry/sdk-trace');
  });

  it('loads the trace SDK and its OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set', async () => {
    // A receiver that takes every export, so the shutdown's flush ends at once.
    const receiver: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => receiver.close(resolve)));
    const loaded = await packagesLoaded({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    expect(loaded).toContain('proxy:tracing.js');
    expect(loaded).toContain('@opentelemetry/sdk-trace');
    expect(loaded).toContain('@opentelemetry/exporter-trace-otlp-http');
    expect(loaded).not.toContain('ioredis');
  });
});
