// SPEC §8c "Memory is bounded by configuration, not by traffic", for what the edge decides alone: in
// app-token mode, waves of calls for never-seen appIds with never-seen credentials — on the batched,
// pass-through and client-batch routes — leave nothing behind, so the real process's RSS stays flat.
// (Per-app state of verified callers is the engine's: freed when idle, tested there.)

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';

const WAVES = 4;
const PER_WAVE = 3000;
const CONCURRENCY = 32;
/** RSS growth allowed from the end of the first wave to the end of the last (allocator noise). */
const BOUND_MB = 12;
const dir = mkdtempSync(join(tmpdir(), 'batch-proxy-memory-'));
let upstream: FakeUpstream;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apps: { app1: 'sk_memory' } });
  const file = join(dir, 'secrets.json');
  writeFileSync(file, JSON.stringify({ app1: 'sk_memory' }));
  proxy = await startProxyProcess({
    UPSTREAM_URL: upstream.url,
    AUTH_MODE: 'app-token',
    APP_SECRETS_FILE: file,
    LOG_LEVEL: 'warn',
    REST_RATE_PER_SEC: '100',
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

const ROUTES = [
  (app: string) => ({ method: 'PUT' as const, path: `/v1/${app}/users/u1`, body: '{"name":"x"}' }),
  (app: string) => ({
    method: 'GET' as const,
    path: `/v1/${app}/users/u1`,
    extra: { 'x-batch-bypass': '1' },
  }),
  (app: string) => ({ method: 'POST' as const, path: `/v1/${app}/batch`, body: '[]' }),
];

async function wave(pool: Pool, n: number): Promise<number[]> {
  const statuses = new Set<number>();
  let next = 0;
  const worker = async () => {
    while (next < PER_WAVE) {
      const i = next++;
      const route = (ROUTES[i % ROUTES.length] as (typeof ROUTES)[number])(`mem-${n}-${i}`);
      const res = await pool.request({
        method: route.method,
        path: route.path,
        headers: {
          authorization: `Bearer tok-${n}-${i}`,
          'content-type': 'application/json',
          ...('extra' in route ? route.extra : {}),
        },
        ...('body' in route ? { body: route.body } : {}),
      });
      statuses.add(res.statusCode);
      await res.body.dump();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return [...statuses];
}

describe('memory under waves of unknown appIds and credentials', () => {
  it('holds RSS flat and never reaches the upstream', async () => {
    const pool = new Pool(proxy.url, { connections: CONCURRENCY });
    const pid = proxy.child.pid ?? 0;
    const samples: number[] = [];
    try {
      for (let n = 0; n < WAVES; n++) {
        expect(await wave(pool, n)).toEqual([401]);
        samples.push(Math.round(rssMb(pid)));
      }
    } finally {
      await pool.close();
    }
    const growth = (samples.at(-1) ?? 0) - (samples[0] ?? 0);
    expect(growth, `RSS after each wave of ${PER_WAVE} (MB): ${samples.join(', ')}`).toBeLessThan(BOUND_MB);
    expect(upstream.stats.batchCalls + upstream.stats.singleCalls).toBe(0);
  });
});
