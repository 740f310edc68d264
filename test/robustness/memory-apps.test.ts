// SPEC §8c "Memory is bounded by configuration, not by traffic", for callers the proxy does not
// verify (AUTH_MODE=passthrough): waves of calls for never-seen appIds with never-seen credentials
// reach the engine and the upstream (which answers 404 for an unknown app); the engine's per-app
// state and the limiter's buckets are forgotten once idle, so the real process's RSS stays flat.
// (Found: ~3.5-5.6 KB kept per appId ever seen.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { rssAfterWaves } from './waves.js';

const WAVES = 5;
const PER_WAVE = 3000;
/**
 * RSS growth allowed from the end of the second wave to the end of the last (allocator noise). The
 * first waves grow the heap to its working size (seen: 140 → 164 MB) whatever is kept; what is kept
 * per app shows after that: the old engine kept ~3.5-5.6 KB per appId, 10-17 MB a wave.
 */
const BOUND_MB = 12;
let upstream: FakeUpstream;
let proxy: ProxyProcess;
/** Calls that reached the upstream (its statistics count known apps only). */
let upstreamCalls = 0;

beforeAll(async () => {
  upstream = await startFakeUpstream({
    apps: { app1: 'sk_memory' },
    onCall: () => {
      upstreamCalls++;
    },
  });
  proxy = await startProxyProcess({
    UPSTREAM_URL: upstream.url,
    LOG_LEVEL: 'warn',
    REST_RATE_PER_SEC: '100000',
    REST_BURST: '100000',
    BATCH_RATE_PER_SEC: '100000',
    BATCH_BURST: '100000',
    BATCH_WINDOW_MS: '1',
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

describe('memory under waves of new appIds reaching the engine', () => {
  it('holds RSS flat while every call is answered by the upstream', async () => {
    const samples = await rssAfterWaves(
      proxy,
      { waves: WAVES, perWave: PER_WAVE, concurrency: 32 },
      (statuses) =>
        // 404: the upstream's own answer for an app it does not know, batched or passed through.
        expect(statuses).toEqual([404]),
    );
    const growth = (samples.at(-1) ?? 0) - (samples[1] ?? 0);
    expect(growth, `RSS after each wave of ${PER_WAVE} (MB): ${samples.join(', ')}`).toBeLessThan(BOUND_MB);
    // Every app's call went upstream: each app is alone in its group, one call each.
    expect(upstreamCalls).toBe(WAVES * PER_WAVE);
  });
});
