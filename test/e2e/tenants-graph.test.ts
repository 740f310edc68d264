// SPEC §8d, budgets per tenant where the upstream limits per tenant: Graph limits per tenant and
// application, so behind one proxy each tenant's accepted tokens spend their own tenant's budget.
// Through the built proxy in front of the fake Graph on loopback, which enforces a hidden batch-call
// limit per tenant at the proxy's configured rate (2 $batch calls/s): contoso's ten users send more
// than that budget can carry (a backlog builds, their waits grow to seconds), while fabrikam's one
// user, at a rate its own budget carries, is answered within its window plus the fake's latency.
// With one budget per API version (before), fabrikam's user took its turn among contoso's ten groups
// at 2 calls/s: seconds per call.

import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { signGraphToken, startFakeGraph } from '../fake-graph/index.js';
import { metrics, series } from '../harness/metrics.js';
import { startProxyProcess } from '../harness/process.js';
import { useCleanup } from '../harness/use.js';

const cleanup = useCleanup();
const APP = '11111111-2222-3333-4444-555555555555';
const token = (tid: string, oid: string) => `Bearer ${signGraphToken({ tid, oid, appid: APP })}`;
const CONTOSO = Array.from({ length: 10 }, (_, i) => `c-user-${i}`);
const FABRIKAM = 'f-user-0';

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function get(pool: Pool, credential: string, path: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const res = await pool.request({ path, method: 'GET', headers: { authorization: credential } });
  await res.body.text();
  return { status: res.statusCode, ms: performance.now() - t0 };
}

describe('Graph budgets per tenant (SPEC §8d)', () => {
  it('one tenant’s backlog never slows another tenant’s calls: each spends its own budget', async () => {
    const limit = { ratePerSec: 2, burst: 2 };
    const fake = await startFakeGraph({
      tenants: {
        contoso: { tokens: {}, users: Object.fromEntries(CONTOSO.map((u) => [u, {}])) },
        fabrikam: { tokens: {}, users: { [FABRIKAM]: {} } },
      },
      limits: { batchCalls: limit },
      latencyMs: 20,
    });
    cleanup.push(() => fake.close());
    const proxy = await startProxyProcess({
      DIALECT: 'graph',
      UPSTREAM_URL: fake.url,
      LOG_LEVEL: 'warn',
      BATCH_RATE_PER_SEC: '2',
      BATCH_BURST: '1',
      BATCH_WINDOW_MS: '10',
      MAX_WAIT_MS: '30000',
    });
    cleanup.push(() => proxy.stop());
    // One pool per tenant: contoso's backlog holds hundreds of calls open, which must not queue
    // fabrikam's in the client.
    const pool = new Pool(proxy.url, { connections: 256 });
    const fabrikamPool = new Pool(proxy.url, { connections: 8 });
    cleanup.push(() => pool.close());
    cleanup.push(() => fabrikamPool.close());

    // Each token's first call: the upstream accepts it (until then it spends a budget of its own).
    const contoso = CONTOSO.map((u) => token('contoso', u));
    const fabrikam = token('fabrikam', FABRIKAM);
    // At the fake's rate (2 $batch calls/s per tenant), so it refuses none of them.
    for (const credential of [...contoso, fabrikam]) {
      expect((await get(pool, credential, '/v1.0/me')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
    }

    // 5 s: every contoso user a call every 250 ms (40 groups' calls/s against 2 batch calls/s);
    // fabrikam's user one every 750 ms (within its own 2/s).
    const durationMs = 5_000;
    const t0 = performance.now();
    const at = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - performance.now())));
    const contosoCalls: Array<Promise<{ status: number; ms: number }>> = [];
    const fabrikamCalls: Array<Promise<{ status: number; ms: number }>> = [];
    const load = (async () => {
      for (let ms = 0; ms < durationMs; ms += 250) {
        await at(ms);
        for (const [i, credential] of contoso.entries()) {
          contosoCalls.push(get(pool, credential, `/v1.0/users/${CONTOSO[i]}`));
        }
      }
    })();
    const probe = (async () => {
      for (let ms = 500; ms < durationMs; ms += 750) {
        await at(ms);
        fabrikamCalls.push(get(fabrikamPool, fabrikam, `/v1.0/users/${FABRIKAM}`));
      }
    })();
    await Promise.all([load, probe]);
    const [c, f] = await Promise.all([Promise.all(contosoCalls), Promise.all(fabrikamCalls)]);
    const fabrikamMs = f.map((r) => r.ms);
    const contosoMs = c.map((r) => r.ms);
    console.log(
      `fabrikam p50 ${percentile(fabrikamMs, 50).toFixed(0)} ms, max ${Math.max(...fabrikamMs).toFixed(0)} ms; ` +
        `contoso p50 ${percentile(contosoMs, 50).toFixed(0)} ms, p90 ${percentile(contosoMs, 90).toFixed(0)} ms; ` +
        `upstream 429s ${JSON.stringify(fake.stats.throttled)}`,
    );
    // The fake's per-tenant limit never refused a call: each tenant's budget paced its own.
    expect(fake.stats.throttled).toEqual({ batchCall: 0, singleCall: 0, inBatch: 0 });
    // Every call answered 200 (contoso's backlog waits, within MAX_WAIT_MS).
    expect(c.every((r) => r.status === 200) && f.every((r) => r.status === 200)).toBe(true);
    // Contoso's budget really was scarce: its calls waited seconds.
    expect(percentile(contosoMs, 90)).toBeGreaterThan(1_000);
    // Fabrikam's own budget: its window (10 ms), the fake's 20 ms, and the machine's noise.
    expect(percentile(fabrikamMs, 50)).toBeLessThan(250);
    expect(Math.max(...fabrikamMs)).toBeLessThan(600);
    // Watched: a budget per tenant (and any first-contact one not yet forgotten) beside the version's.
    expect(series(await metrics(proxy), 'batch_proxy_budget_scopes')).toBeGreaterThanOrEqual(2);
  });
});
