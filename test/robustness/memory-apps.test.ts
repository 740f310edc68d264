// SPEC §8c "Memory is bounded by configuration, not by traffic", for callers the proxy does not
// verify (AUTH_MODE=passthrough): waves of calls for never-seen appIds with never-seen credentials
// reach the engine and the upstream (which answers 404 for an unknown app); the engine's per-app
// state and the limiter's buckets are forgotten once idle, so the real process's heap after GC
// stays flat (RSS is reported beside it).
// (Found: ~3.5-5.6 KB kept per appId ever seen.)

import { describe, expect, it } from 'vitest';
import { NO_PACING } from '../harness/env.js';
import { useProxy } from '../harness/use.js';
import { INSPECT_ARGS } from './inspector.js';
import { describeSamples, memoryAfterWaves } from './waves.js';

const WAVES = 5;
const PER_WAVE = 3000;
/**
 * Growth of the live heap after GC allowed from the end of the second wave to the end of the last
 * (seen: 26.4 → 25.2 MB). Up to ~1,000 apps not yet swept are held at any time whatever the wave (the
 * engine sweeps every 1,024 new apps). An engine that never forgets an app: 34 → 80 MB, ~12 MB a
 * wave. RSS, reported beside it, swung by 20+ MB between waves on a busy machine with nothing kept.
 */
const BOUND_MB = 4;
/** Calls that reached the upstream (its statistics count known apps only). */
let upstreamCalls = 0;

const { proxy } = useProxy(
  {
    LOG_LEVEL: 'warn',
    ...NO_PACING,
    BATCH_WINDOW_MS: '1',
  },
  {
    upstream: {
      apps: { app1: 'sk_memory' },
      onCall: () => {
        upstreamCalls++;
      },
    },
    nodeArgs: INSPECT_ARGS,
  },
);

describe('memory under waves of new appIds reaching the engine', () => {
  it('keeps no memory per app (heap after GC flat) while every call is answered by the upstream', async () => {
    const samples = await memoryAfterWaves(
      proxy,
      { waves: WAVES, perWave: PER_WAVE, concurrency: 32 },
      (statuses) =>
        // 404: the upstream's own answer for an app it does not know, batched or passed through.
        expect(statuses).toEqual([404]),
    );
    const growth = (samples.heap.at(-1) ?? 0) - (samples.heap[1] ?? 0);
    expect(growth, describeSamples(samples, PER_WAVE)).toBeLessThan(BOUND_MB);
    // Every app's call went upstream: each app is alone in its group, one call each.
    expect(upstreamCalls).toBe(WAVES * PER_WAVE);
    // Minutes on a busy 2-core machine (seconds on a quiet one): 12-15k calls through a real process.
  }, 180_000);
});
