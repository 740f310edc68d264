// `pnpm demo`: the fake TalkJS upstream, the real proxy process and a load client, all on loopback
// (no Redis, no network). Shows progress while it runs and ends with a table per load phase: the
// proxy from light load to overload, then a baseline straight at the upstream.
// Bounded: about 26 s of load, and a watchdog stops everything after DEMO_TIMEOUT_MS.
// `pnpm demo --keep` leaves the upstream and the proxy running afterwards (Ctrl-C stops them), to look
// at the status page and /metrics.

import { join } from 'node:path';
import { startFakeUpstream } from '../fake-upstream/index.js';
import { startProxyProcess } from '../harness/process.js';
import { repoRoot } from '../harness/repo-root.js';
import { renderTable, totalRow } from './report.js';
import { countersFromStats, DEMO_PHASES, runScenario, seed } from './scenario.js';

const APP_ID = 'demo';
const SECRET = 'sk_demo_not_a_real_key';
/** The demo's upstream budget: 4 batch calls a second (burst 4), so 40 ops/s at 10 ops a batch. */
const BATCH_RATE_PER_SEC = 4;
const BATCH_BURST = 4;
/** And 10 single calls a second: a direct caller above that gets 429s, the proxy spends it too. */
const REST_RATE_PER_SEC = 10;
const REST_BURST = 10;
/** Short enough that the overload phase shows shedding at the deadline. */
const MAX_WAIT_MS = 2_000;
const MAX_OPS = 10;
const USERS = 200;
const UPSTREAM_LATENCY_MS = 20;
const TIMEOUT_MS = Number(process.env.DEMO_TIMEOUT_MS ?? 90_000);
const KEEP = process.argv.includes('--keep');

async function main(): Promise<number> {
  const entry = join(repoRoot(), 'apps/proxy/dist/main.js');
  const upstream = await startFakeUpstream({
    apps: { [APP_ID]: SECRET },
    latencyMs: UPSTREAM_LATENCY_MS,
  });
  const proxy = await startProxyProcess(
    {
      UPSTREAM_URL: upstream.url,
      BATCH_RATE_PER_SEC: String(BATCH_RATE_PER_SEC),
      BATCH_BURST: String(BATCH_BURST),
      BATCH_MAX_OPS: String(MAX_OPS),
      REST_RATE_PER_SEC: String(REST_RATE_PER_SEC),
      REST_BURST: String(REST_BURST),
      MAX_WAIT_MS: String(MAX_WAIT_MS),
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
    console.log(
      `fake upstream ${upstream.url} (batch calls ${BATCH_RATE_PER_SEC}/s burst ${BATCH_BURST}, ` +
        `single calls ${REST_RATE_PER_SEC}/s burst ${REST_BURST}: at most ${BATCH_RATE_PER_SEC * MAX_OPS + REST_RATE_PER_SEC} ops/s)`,
    );
    console.log(`proxy         ${proxy.url}`);
    console.log(`status page   ${proxy.adminUrl}/   metrics ${proxy.adminUrl}/metrics`);
    // Seeded before the limits apply: the seed is set-up, not part of the comparison.
    await seed(upstream.url, APP_ID, SECRET, USERS);
    upstream.setLimits({
      batch: { ratePerSec: BATCH_RATE_PER_SEC, burst: BATCH_BURST },
      rest: { ratePerSec: REST_RATE_PER_SEC, burst: REST_BURST },
    });
    const rows = await runScenario({
      targets: [proxy.url],
      upstreamUrl: upstream.url,
      appId: APP_ID,
      secret: SECRET,
      phases: DEMO_PHASES,
      users: USERS,
      timeoutMs: 15_000,
      upstreamCounters: () => Promise.resolve(countersFromStats(upstream.stats)),
      log: (line) => console.log(line),
    });
    const proxied = rows.filter((r) => !DEMO_PHASES.find((p) => p.name === r.phase)?.direct);
    const total = totalRow(proxied);
    console.log(`\n${renderTable([...rows, total], MAX_OPS)}\n`);
    console.log('direct: the calls sent without the proxy, for comparison (not in the total).');
    console.log('shed: 503 + Retry-After from the proxy for calls it could not send before MAX_WAIT_MS.');
    const failed = total.callsIn - total.ok - total.shed;
    const code = failed > 0 || total.upstream429 > 0 ? 1 : 0;
    if (code !== 0)
      console.log(`demo: ${failed} call(s) failed, ${total.upstream429} upstream 429(s) through the proxy`);
    if (KEEP) {
      clearTimeout(watchdog);
      console.log(`\nstill running (--keep): status page ${proxy.adminUrl}/ , Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    return code;
  } finally {
    clearTimeout(watchdog);
    const code = await proxy.stop();
    await upstream.close();
    if (code !== 0) console.error(`demo: the proxy exited with ${code}; its logs:\n${proxy.logs()}`);
  }
}

process.exitCode = await main();
