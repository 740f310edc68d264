import { describe, expect, it } from 'vitest';
import { createMetrics, MAX_APP_SERIES } from './metrics.js';

type App = { appId: string; queued: number; inflight: number };

function seriesOf(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

describe('per-app gauges (SPEC §8c: metric label sets are bounded)', () => {
  it('lists at most MAX_APP_SERIES apps, the busiest, and the rest as one "_other" series', async () => {
    let apps: App[] = Array.from({ length: 1000 }, (_, i) => ({
      appId: `app${i}`,
      queued: i % 7,
      inflight: i === 999 ? 50 : 0,
    }));
    const metrics = createMetrics({ queued: () => apps, redisFallback: () => false });
    const text = await metrics.text();
    const queued = seriesOf(text, 'batch_proxy_queued_ops');
    expect(queued.length).toBeLessThanOrEqual(MAX_APP_SERIES + 1);
    expect(queued.some((l) => l.includes('app="app999"'))).toBe(true);
    const other = queued.find((l) => l.includes('app="_other"'));
    const listedTotal = queued.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    expect(other).toBeDefined();
    expect(listedTotal).toBe(apps.reduce((sum, a) => sum + a.queued, 0));

    // An app gone from the engine (idle, evicted) leaves no series behind.
    apps = [{ appId: 'only', queued: 1, inflight: 0 }];
    const after = await metrics.text();
    expect(seriesOf(after, 'batch_proxy_queued_ops')).toEqual([expect.stringContaining('app="only"')]);
    expect(seriesOf(after, 'batch_proxy_inflight_ops')).toEqual([expect.stringContaining('app="only"')]);
    await metrics.shutdown();
  });

  it('escapes an app id that would break the text format', async () => {
    const metrics = createMetrics({
      queued: () => [{ appId: 'a"b\\c\nd', queued: 1, inflight: 0 }],
      redisFallback: () => false,
    });
    expect(await metrics.text()).toContain(
      'batch_proxy_queued_ops{app="a\\"b\\\\c\\nd",otel_scope_name="batch-proxy"} 1\n',
    );
    await metrics.shutdown();
  });
});
