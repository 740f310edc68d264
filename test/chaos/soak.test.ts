// The soak's CI version (issue #34, item 4): two minutes of test/chaos/soak-engine.ts at a lower rate,
// every interval scaled (a Redis restart every 20 s, a 5xx burst every 14 s, a sample every 10 s).
// `pnpm soak` runs the hour. Writes its table and plot to a temporary directory, not the tree. The fake
// upstream runs in a child process (soak-upstream.ts, compiled into test/.artifacts first, ~3 s).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSoak, soakMarkdown, soakSvg } from './soak-engine.js';

const DURATION_MS = Number(process.env.SOAK_CI_MS ?? 120_000);
const RATE = Number(process.env.SOAK_CI_RATE ?? 100);

describe('soak, two minutes', () => {
  it(
    'loses nothing and runs nothing twice through churn, Redis restarts and 5xx bursts',
    async () => {
      const result = await runSoak({ durationMs: DURATION_MS, ratePerSec: RATE, sampleEveryMs: 10_000 });
      const dir = mkdtempSync(join(tmpdir(), 'soak-'));
      writeFileSync(join(dir, 'soak.svg'), soakSvg(result));
      const md = soakMarkdown(result, 'soak.svg');
      writeFileSync(join(dir, 'soak.md'), md);
      console.log(`${md}\n(written to ${dir})`);

      expect(result.redisRestarts).toBeGreaterThanOrEqual(5);
      expect(result.bursts).toBeGreaterThanOrEqual(8);
      expect(result.sent).toBeGreaterThanOrEqual(Math.floor((DURATION_MS / 1000) * RATE) - 1);
      expect(result.choreFailures).toEqual([]);
      expect(result.duplicated).toBe(0);
      expect(result.foreign).toBe(0);
      expect(result.writesRun).toBeGreaterThan(0);
      expect(result.lost).toBe(0);
      expect(result.transportErrors).toEqual({});
      expect(result.answered).toBe(result.sent);
      expect(result.samples.length).toBeGreaterThanOrEqual(DURATION_MS / 10_000 - 1);
      // Heap after GC is the replicas' own gauge: 0 until a replica's first full GC, which may come
      // after the first sample; by the last one each has had one.
      expect(result.samples.at(-1)?.heapAfterGcMb.every((h) => h > 0)).toBe(true);
      for (const s of result.samples) expect(s.rssMb.every((r) => r > 0)).toBe(true);
    },
    DURATION_MS + 60_000,
  );
});
