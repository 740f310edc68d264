// SPEC §8c "Dependencies may be down at start": Redis unreachable at start is the same as Redis lost
// later, and every start-up mistake exits 2 with one line naming the variable — never a stack trace.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { freePort } from '../harness/ports.js';
import { runProxyToExit, startProxyProcess } from '../harness/process.js';

const SECRET = 'sk_startup_0123456789abcdef';
let upstream: FakeUpstream;
const dir = mkdtempSync(join(tmpdir(), 'batch-proxy-startup-'));

beforeAll(async () => {
  upstream = await startFakeUpstream({ apps: { app1: SECRET } });
});

afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A port nobody listens on: connections to it are refused at once. */
async function deadRedisUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

/** Exit 2, exactly one line on stderr naming `variable`, nothing that looks like a stack trace. */
function expectStartupMistake(
  result: { code: number | null; stdout: string; stderr: string },
  variable: string,
) {
  expect(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toContain(variable);
  expect(result.stderr + result.stdout).not.toMatch(/\n\s+at /);
}

describe('Redis unreachable at start', () => {
  it('starts in fallback, ready, and batches with the in-process limiter', async () => {
    const proxy = await startProxyProcess({
      UPSTREAM_URL: upstream.url,
      REDIS_URL: await deadRedisUrl(),
      LOG_LEVEL: 'info',
    });
    try {
      const status = (await (await fetch(`${proxy.adminUrl}/status.json`)).json()) as { redis: string };
      expect(status.redis).toBe('fallback');
      const res = await fetch(`${proxy.url}/v1/app1/users/u1`, {
        headers: { authorization: `Bearer ${SECRET}` },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(404);
      expect(proxy.logs()).toContain('redis unreachable');
      expect(proxy.child.exitCode).toBeNull();
    } finally {
      await proxy.stop();
    }
  });

  it('is live but not ready with REDIS_FAIL_CLOSED', async () => {
    const proxy = await startProxyProcess(
      {
        UPSTREAM_URL: upstream.url,
        REDIS_URL: await deadRedisUrl(),
        REDIS_FAIL_CLOSED: 'true',
        LOG_LEVEL: 'warn',
      },
      { waitFor: 'live' },
    );
    try {
      const ready = await fetch(`${proxy.adminUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ reason: expect.stringContaining('REDIS_FAIL_CLOSED') });
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });
});

describe('start-up mistakes exit 2 with one line naming the variable', () => {
  it('PORT already in use', async () => {
    const taken = await occupy();
    try {
      const result = await runProxyToExit({ PORT: String(taken.port), ADMIN_PORT: String(await freePort()) });
      expectStartupMistake(result, 'PORT');
      expect(result.stderr).not.toContain('ADMIN_PORT');
    } finally {
      taken.server.close();
    }
  });

  it('ADMIN_PORT already in use', async () => {
    const taken = await occupy();
    try {
      const result = await runProxyToExit({ PORT: String(await freePort()), ADMIN_PORT: String(taken.port) });
      expectStartupMistake(result, 'ADMIN_PORT');
    } finally {
      taken.server.close();
    }
  });

  const cases: Array<[string, Record<string, string>, string]> = [
    [
      'REQUEST_TIMEOUT_MS below HEADERS_TIMEOUT_MS',
      { REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '5000' },
      'REQUEST_TIMEOUT_MS',
    ],
    ['a value that is not a number', { PORT: 'eighty' }, 'PORT'],
    ['BATCH_MAX_OPS above the dialect maximum', { BATCH_MAX_OPS: '11' }, 'BATCH_MAX_OPS'],
    ['PORT and ADMIN_PORT the same', { PORT: '18999', ADMIN_PORT: '18999' }, 'ADMIN_PORT'],
    [
      'Sentinel and Cluster both set',
      { REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' },
      'REDIS_CLUSTER_NODES',
    ],
    ['app-token without a secrets file', { AUTH_MODE: 'app-token' }, 'APP_SECRETS_FILE'],
    [
      'a secrets file that does not exist',
      { AUTH_MODE: 'app-token', APP_SECRETS_FILE: join(dir, 'missing.json') },
      'APP_SECRETS_FILE',
    ],
    [
      'a secrets file that is a directory',
      { AUTH_MODE: 'app-token', APP_SECRETS_FILE: dir },
      'APP_SECRETS_FILE',
    ],
  ];
  for (const [name, env, variable] of cases) {
    it(name, async () => {
      const ports = { PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) };
      expectStartupMistake(await runProxyToExit({ ...ports, UPSTREAM_URL: upstream.url, ...env }), variable);
    });
  }

  it('a malformed secrets file: named, and no byte of its secrets printed', async () => {
    const file = join(dir, 'broken.json');
    // A trailing comma: V8's JSON error quotes the text around it, secret included.
    writeFileSync(file, `{"app1": "${SECRET}",}`);
    const result = await runProxyToExit({
      PORT: String(await freePort()),
      ADMIN_PORT: String(await freePort()),
      AUTH_MODE: 'app-token',
      APP_SECRETS_FILE: file,
    });
    expectStartupMistake(result, 'APP_SECRETS_FILE');
    expect(result.stderr + result.stdout).not.toContain(SECRET.slice(0, 8));
  });
});
