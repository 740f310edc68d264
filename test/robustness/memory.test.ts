// SPEC §8c "Memory is bounded by configuration, not by traffic", for what the edge decides alone: in
// app-token mode, waves of calls for never-seen appIds with never-seen credentials — on the batched,
// pass-through and client-batch routes — leave nothing behind, so the real process's heap after GC
// stays flat (RSS is reported beside it).
// (Per-app state of verified callers is the engine's: freed when idle, tested there.)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appTokenEnv, useProxy } from '../harness/use.js';
import { INSPECT_ARGS } from './inspector.js';
import { describeSamples, memoryAfterWaves } from './waves.js';

const WAVES = 4;
const PER_WAVE = 3000;
const CONCURRENCY = 32;
/**
 * Growth of the live heap after GC allowed from the end of the first wave to the end of the last
 * (seen: 20.1 → 20.3 MB). 3,000 calls a wave: anything kept per call or appId shows as MBs a wave.
 */
const BOUND_MB = 3;
const dir = mkdtempSync(join(tmpdir(), 'batch-proxy-memory-'));

// Registered before useProxy's, so it runs after the proxy has stopped.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { proxy, upstream } = useProxy(
  () => ({ ...appTokenEnv(dir, { app1: 'sk_memory' }), LOG_LEVEL: 'warn', REST_RATE_PER_SEC: '100' }),
  { upstream: { apps: { app1: 'sk_memory' } }, nodeArgs: INSPECT_ARGS },
);

describe('memory under waves of unknown appIds and credentials', () => {
  it('keeps no memory per app (heap after GC flat) and never reaches the upstream', async () => {
    const samples = await memoryAfterWaves(
      proxy,
      { waves: WAVES, perWave: PER_WAVE, concurrency: CONCURRENCY },
      (statuses) => expect(statuses).toEqual([401]),
    );
    const growth = (samples.heap.at(-1) ?? 0) - (samples.heap[0] ?? 0);
    expect(growth, describeSamples(samples, PER_WAVE)).toBeLessThan(BOUND_MB);
    expect(upstream.stats.batchCalls + upstream.stats.singleCalls).toBe(0);
    // Minutes on a busy 2-core machine (seconds on a quiet one): 12-15k calls through a real process.
  }, 180_000);
});
