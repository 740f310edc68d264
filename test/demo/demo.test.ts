// The demo's own workload, shortened, against the built proxy: the direct baseline earns upstream
// 429s; through the proxy every call is answered 2xx or shed by the proxy itself (overload), the
// upstream never answers 429, batches form once the load outgrows the batch budget, and the table
// renders.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { renderTable, totalRow } from './report.js';
import { countersFromStats, runScenario, seed } from './scenario.js';

const APP = 'demo';
const SECRET = 'sk_demo_test';

let upstream: FakeUpstream;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeUpstream({
    apps: { [APP]: SECRET },
    latencyMs: 20,
  });
  proxy = await startProxyProcess({
    UPSTREAM_URL: upstream.url,
    BATCH_RATE_PER_SEC: '4',
    BATCH_BURST: '4',
    REST_RATE_PER_SEC: '10',
    REST_BURST: '10',
    MAX_WAIT_MS: '1000',
    LOG_LEVEL: 'warn',
  });
});

afterAll(async () => {
  const code = await proxy?.stop();
  await upstream?.close();
  expect(code).toBe(0);
});

describe('the demo scenario', () => {
  it('answers every call, batches under load, sheds only overload and never earns an upstream 429', async () => {
    await seed(upstream.url, APP, SECRET, 50);
    upstream.setLimits({ batch: { ratePerSec: 4, burst: 4 }, rest: { ratePerSec: 10, burst: 10 } });
    const lines: string[] = [];
    const rows = await runScenario({
      targets: [proxy.url],
      upstreamUrl: upstream.url,
      appId: APP,
      secret: SECRET,
      phases: [
        { name: 'light', ratePerSec: 3, durationMs: 1_000 },
        { name: 'busy', ratePerSec: 30, durationMs: 2_000 },
        // 2.4× the 50 ops/s both budgets allow, for longer than MAX_WAIT_MS.
        { name: 'overload', ratePerSec: 120, durationMs: 2_000 },
        // Last: direct calls drain the upstream's budgets behind the proxy's back.
        { name: 'direct', ratePerSec: 30, durationMs: 2_000, direct: true },
      ],
      users: 50,
      timeoutMs: 10_000,
      upstreamCounters: () => Promise.resolve(countersFromStats(upstream.stats)),
      log: (line) => lines.push(line),
    });
    const [light, busy, overload, direct] = rows;
    if (!direct || !light || !busy || !overload) throw new Error(`expected 4 rows, got ${rows.length}`);
    // Without the proxy, 60 calls in 2 s against 10 single calls/s, burst 10: at most 10 + 2 × 10 (+1
    // for the edge) get through, every other one is refused by the upstream.
    expect(direct.ok).toBeLessThanOrEqual(31);
    expect(direct.upstream429).toBe(direct.callsIn - direct.ok);
    for (const r of [light, busy]) {
      expect(r.ok).toBe(r.callsIn);
      expect(r.upstream429).toBe(0);
    }
    expect(busy.batchOps / busy.batchCalls).toBeGreaterThan(2);
    // Overload: each call is either answered 2xx or shed by the proxy; the upstream still sees no 429.
    expect(overload.ok + overload.shed).toBe(overload.callsIn);
    expect(overload.shed).toBeGreaterThan(0);
    expect(overload.upstream429).toBe(0);
    expect(lines.length).toBeGreaterThan(0);
    const total = totalRow([light, busy, overload]);
    const table = renderTable([...rows, total], 10);
    expect(table).toMatch(
      /^phase .* calls in .* 2xx .* shed .* upstream calls out .* fill .* p50 .* p99 .* upstream 429s$/m,
    );
    expect(table.split('\n')).toHaveLength(7);
  });
});
