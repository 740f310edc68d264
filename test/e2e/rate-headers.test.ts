// Issue #30: the proxy paces from the upstream's own rate-limit headers. The fake upstream counts a
// hidden quota of batch calls per window, far under the operator's BATCH_RATE_PER_SEC, and tells it in
// one header style; two replicas share a real Redis. Offered more than the quota, the fleet earns no
// 429 once the first answer told it the figures, and follows a quota lowered mid-run.

import { describe, expect, it } from 'vitest';
import { type FakeUpstream, type QuotaStyle, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';
import { useCleanup } from '../harness/use.js';

const SECRET = 'sk_rate_headers';
/** The operator's rate: four times what the upstream allows, so only the headers keep it under. */
const CEILING = 40;

const cleanup = useCleanup();

async function fleet(
  quota: { style: QuotaStyle; limit: number; windowMs: number },
  env: Record<string, string> = {},
): Promise<{ upstream: FakeUpstream; proxies: ProxyProcess[] }> {
  const upstream = await startFakeUpstream({ apps: { app1: SECRET }, quota });
  cleanup.push(() => upstream.close());
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const proxies = await Promise.all(
    [0, 1].map(() =>
      startProxyProcess({
        UPSTREAM_URL: upstream.url,
        LOG_LEVEL: 'warn',
        REDIS_URL: redis.url,
        BATCH_RATE_PER_SEC: String(CEILING),
        // Burst 1: every grant waits for the previous answer, so the first answer comes before the
        // second call leaves — the headers are known from then on.
        BATCH_BURST: '1',
        BATCH_MAX_OPS: '1',
        BATCH_WINDOW_MS: '1',
        ...env,
      }),
    ),
  );
  for (const p of proxies) cleanup.push(() => p.stop());
  return { upstream, proxies };
}

/** `perSec` single-op calls a second for `ms`, alternating replicas; resolves with their statuses. */
async function offer(proxies: ProxyProcess[], perSec: number, ms: number): Promise<number[]> {
  const calls: Promise<number>[] = [];
  const started = performance.now();
  for (let i = 0; performance.now() - started < ms; i++) {
    calls.push(
      fetch(`${proxies[i % proxies.length]?.url}/v1/app1/users/u${i % 50}`, {
        headers: { authorization: `Bearer ${SECRET}` },
        signal: AbortSignal.timeout(30_000),
      }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1000 / perSec));
  }
  return Promise.all(calls);
}

async function upstreamRemaining(proxy: ProxyProcess): Promise<number | undefined> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('batch_proxy_upstream_remaining '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('pacing from the upstream rate-limit headers, two replicas sharing Redis', () => {
  for (const style of ['ietf', 'ietf-triplet', 'x-ratelimit'] as const) {
    it(`${style}: no 429 and paced, not stalled, across a quota lowered mid-run`, async () => {
      // 20 calls per 2 s window: 10/s, a quarter of the ceiling.
      const { upstream, proxies } = await fleet({ style, limit: 20, windowMs: 2000 });
      const first = offer(proxies, 15, 4000);
      await new Promise((resolve) => setTimeout(resolve, 4000));
      upstream.setQuotaLimit(10);
      const statuses = [...(await first), ...(await offer(proxies, 15, 2000))];
      const arrivals = upstream.stats.arrivals.batch;
      const windows = Math.ceil(((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)) / 2000);
      console.log(
        `${style}: ${arrivals.length} batch calls in ~${windows} windows, 429s ${upstream.stats.rejected429.batch}, statuses ${[...new Set(statuses)].join(',')}`,
      );
      expect(upstream.stats.rejected429.batch).toBe(0);
      // Answered by the upstream (users not created: 404), never a 429 or a proxy error.
      expect(statuses.filter((s) => s !== 404)).toEqual([]);
      // Paced, not stalled: well over half of what the windows allowed went through.
      expect(arrivals.length).toBeGreaterThan(30);
      expect(await upstreamRemaining(proxies[0] as ProxyProcess)).toBeGreaterThanOrEqual(0);
    }, 60_000);
  }

  it('salesforce: spends what is left of the day at its pace, no faster', async () => {
    // 864 000 a day: 10/s.
    const { upstream, proxies } = await fleet({ style: 'salesforce', limit: 864_000, windowMs: 86_400_000 });
    const statuses = await offer(proxies, 20, 3000);
    const arrivals = upstream.stats.arrivals.batch;
    const spanSec = ((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)) / 1000;
    expect(upstream.stats.rejected429.batch).toBe(0);
    // Answered by the upstream (users not created: 404), never a 429 or a proxy error.
    expect(statuses.filter((s) => s !== 404)).toEqual([]);
    // At most 9/s (10 % held back) after the first answer, not the ceiling of 40/s.
    expect((arrivals.length - 1) / spanSec).toBeLessThan(10);
  }, 60_000);

  it('RATE_HEADERS=off: the same upstream answers 429s (the headers are what keep it under)', async () => {
    const { upstream, proxies } = await fleet(
      { style: 'ietf', limit: 20, windowMs: 2000 },
      { RATE_HEADERS: 'off' },
    );
    await offer(proxies, 30, 3000);
    expect(upstream.stats.rejected429.batch).toBeGreaterThan(0);
  }, 60_000);
});
