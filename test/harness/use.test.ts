import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appTokenEnv, useCleanup, useProxy } from './use.js';

// A stand-in for the built proxy: ready at once, answers its environment as JSON, exits 0 on SIGTERM.
const STUB = `
import { createServer } from 'node:http';
const env = { UPSTREAM_URL: process.env.UPSTREAM_URL, REDIS_URL: process.env.REDIS_URL, EXTRA: process.env.EXTRA };
const data = createServer((req, res) => res.end(JSON.stringify(env)));
const admin = createServer((req, res) => res.end());
data.listen(Number(process.env.PORT), process.env.HOST);
admin.listen(Number(process.env.ADMIN_PORT), process.env.HOST);
process.on('SIGTERM', () => { data.close(); admin.close(); process.exit(0); });
`;

const dir = mkdtempSync(join(tmpdir(), 'use-proxy-stub-'));
const entry = join(dir, 'main.mjs');
writeFileSync(entry, STUB);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const envOf = async (url: string) => (await fetch(url).then((r) => r.json())) as Record<string, string>;

describe('useProxy', () => {
  const early: string[] = [];
  const { proxy, upstream } = useProxy(
    { EXTRA: 'x' },
    { entry, upstream: { apps: { app1: 'sk' } }, exitCode: 0 },
  );
  try {
    void proxy.url;
  } catch (error) {
    early.push((error as Error).message);
  }

  it('refuses a handle used before its beforeAll ran, saying so', () => {
    expect(early).toEqual(['proxy is not started: use it inside a test or hook']);
  });

  it('starts the fake upstream, then the proxy with UPSTREAM_URL pointing at it', async () => {
    expect(await envOf(proxy.url)).toEqual({ UPSTREAM_URL: upstream.url, EXTRA: 'x' });
    expect(upstream.stats.batchCalls).toBe(0);
  });
});

describe('useProxy with an env of what was started', () => {
  const { proxy, redis } = useProxy(
    ({ redis }) => ({ REDIS_URL: redis.url, UPSTREAM_URL: 'http://127.0.0.1:9' }),
    {
      entry,
      redis: true,
    },
  );

  it('passes the started redis to the env, and an explicit UPSTREAM_URL wins', async () => {
    expect(await envOf(proxy.url)).toEqual({ REDIS_URL: redis.url, UPSTREAM_URL: 'http://127.0.0.1:9' });
  });
});

describe('useCleanup', () => {
  const order: string[] = [];
  const cleanup = useCleanup();

  it('registers cleanups in a test', () => {
    cleanup.push(
      async () => order.push('first'),
      async () => order.push('second'),
    );
  });

  it('ran them after that test, last first', () => {
    expect(order).toEqual(['second', 'first']);
  });
});

describe('appTokenEnv', () => {
  let env: Record<string, string>;
  beforeAll(() => {
    env = appTokenEnv(dir, { app1: 'sk_one' });
  });

  it('writes the secrets file and names it with AUTH_MODE=app-token', () => {
    expect(env).toEqual({ AUTH_MODE: 'app-token', APP_SECRETS_FILE: join(dir, 'secrets.json') });
    expect(JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8'))).toEqual({ app1: 'sk_one' });
  });
});
