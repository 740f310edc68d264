// SPEC §8c "Memory is bounded by configuration, not by traffic", for what the edge decides alone: in
// app-token mode, waves of calls for never-seen appIds with never-seen credentials — on the batched,
// pass-through and client-batch routes — leave nothing behind, so the real process's RSS stays flat.
// (Per-app state of verified callers is the engine's: freed when idle, tested there.)

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { rssAfterWaves } from './waves.js';

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

describe('memory under waves of unknown appIds and credentials', () => {
  it('holds RSS flat and never reaches the upstream', async () => {
    const samples = await rssAfterWaves(
      proxy,
      { waves: WAVES, perWave: PER_WAVE, concurrency: CONCURRENCY },
      (statuses) => expect(statuses).toEqual([401]),
    );
    const growth = (samples.at(-1) ?? 0) - (samples[0] ?? 0);
    expect(growth, `RSS after each wave of ${PER_WAVE} (MB): ${samples.join(', ')}`).toBeLessThan(BOUND_MB);
    expect(upstream.stats.batchCalls + upstream.stats.singleCalls).toBe(0);
  });
});
