// The demo's own workload, shortened, against the built proxy: every call answered 2xx, the upstream
// never answers 429, batches form once the load outgrows the batch budget, and the table renders.

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
    limits: { batch: { ratePerSec: 4, burst: 4 } },
    latencyMs: 20,
  });
  proxy = await startProxyProcess({
    UPSTREAM_URL: upstream.url,
    BATCH_RATE_PER_SEC: '4',
    BATCH_BURST: '4',
    MAX_WAIT_MS: '10000',
    LOG_LEVEL: 'warn',
  });
});

afterAll(async () => {
  const code = await proxy?.stop();
  await upstream?.close();
  expect(code).toBe(0);
});

describe('the demo scenario', () => {
  it('answers every call, batches under load and never earns an upstream 429', async () => {
    await seed(upstream.url, APP, SECRET, 50);
    const lines: string[] = [];
    const rows = await runScenario({
      targets: [proxy.url],
      appId: APP,
      secret: SECRET,
      phases: [
        { name: 'light', ratePerSec: 3, durationMs: 1_000 },
        { name: 'busy', ratePerSec: 30, durationMs: 2_000 },
      ],
      users: 50,
      timeoutMs: 10_000,
      upstreamCounters: () => Promise.resolve(countersFromStats(upstream.stats)),
      log: (line) => lines.push(line),
    });
    const total = totalRow(rows);
    expect(total.ok).toBe(total.callsIn);
    expect(total.upstream429).toBe(0);
    const busy = rows[1];
    expect(busy && busy.batchOps / busy.batchCalls).toBeGreaterThan(2);
    expect(lines.length).toBeGreaterThan(0);
    const table = renderTable([...rows, total], 10);
    expect(table).toMatch(
      /^phase .* calls in .* upstream calls out .* fill .* p50 .* p99 .* upstream 429s$/m,
    );
    expect(table.split('\n')).toHaveLength(5);
  });
});
