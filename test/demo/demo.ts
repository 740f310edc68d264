// `pnpm demo`: the fake TalkJS upstream, the real proxy process and a load client, all on loopback
// (no Redis, no network). Shows progress while it runs and ends with a table per load phase.
// Bounded: about 15 s of load, and a watchdog stops everything after DEMO_TIMEOUT_MS.

import { join } from 'node:path';
import { startFakeUpstream } from '../fake-upstream/index.js';
import { startProxyProcess } from '../harness/process.js';
import { repoRoot } from '../harness/repo-root.js';
import { renderTable, totalRow } from './report.js';
import { countersFromStats, DEFAULT_PHASES, runScenario, seed } from './scenario.js';

const APP_ID = 'demo';
const SECRET = 'sk_demo_not_a_real_key';
/** The demo's upstream budget: 4 batch calls a second (burst 4), so 40 ops/s at 10 ops a batch. */
const BATCH_RATE_PER_SEC = 4;
const BATCH_BURST = 4;
const MAX_OPS = 10;
const USERS = 200;
const UPSTREAM_LATENCY_MS = 20;
const TIMEOUT_MS = Number(process.env.DEMO_TIMEOUT_MS ?? 60_000);

async function main(): Promise<number> {
  const entry = join(repoRoot(), 'apps/proxy/dist/main.js');
  const upstream = await startFakeUpstream({
    apps: { [APP_ID]: SECRET },
    limits: { batch: { ratePerSec: BATCH_RATE_PER_SEC, burst: BATCH_BURST } },
    latencyMs: UPSTREAM_LATENCY_MS,
  });
  const proxy = await startProxyProcess(
    {
      UPSTREAM_URL: upstream.url,
      BATCH_RATE_PER_SEC: String(BATCH_RATE_PER_SEC),
      BATCH_BURST: String(BATCH_BURST),
      BATCH_MAX_OPS: String(MAX_OPS),
      MAX_WAIT_MS: '10000',
      LOG_LEVEL: 'warn',
    },
    { entry },
  );
  const watchdog = setTimeout(() => {
    console.error(`demo: still running after ${TIMEOUT_MS} ms, stopping`);
    void proxy.stop('SIGKILL').finally(() => process.exit(1));
  }, TIMEOUT_MS);
  watchdog.unref();
  try {
    console.log(`fake upstream ${upstream.url} (batch limit ${BATCH_RATE_PER_SEC}/s, burst ${BATCH_BURST})`);
    console.log(`proxy         ${proxy.url}  admin ${proxy.adminUrl}/metrics`);
    await seed(upstream.url, APP_ID, SECRET, USERS);
    const rows = await runScenario({
      targets: [proxy.url],
      appId: APP_ID,
      secret: SECRET,
      phases: DEFAULT_PHASES,
      users: USERS,
      timeoutMs: 15_000,
      upstreamCounters: () => Promise.resolve(countersFromStats(upstream.stats)),
      log: (line) => console.log(line),
    });
    const total = totalRow(rows);
    console.log(`\n${renderTable([...rows, total], MAX_OPS)}\n`);
    const failed = total.callsIn - total.ok;
    if (failed > 0 || total.upstream429 > 0) {
      console.log(`demo: ${failed} call(s) failed, ${total.upstream429} upstream 429(s)`);
      return 1;
    }
    return 0;
  } finally {
    clearTimeout(watchdog);
    const code = await proxy.stop();
    await upstream.close();
    if (code !== 0) console.error(`demo: the proxy exited with ${code}; its logs:\n${proxy.logs()}`);
  }
}

process.exitCode = await main();
