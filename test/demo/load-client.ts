// The load client of infra/compose.yaml: seeds the fake upstream, then offers the demo's phases to
// every proxy replica round-robin and prints the same table as `pnpm demo`.

import { renderTable, totalRow } from './report.js';
import { DEFAULT_PHASES, runScenario, seed, type UpstreamCounters } from './scenario.js';

const env = process.env;
const targets = (env.PROXY_URLS ?? 'http://127.0.0.1:8080').split(',').map((u) => u.trim());
const upstreamUrl = env.UPSTREAM_URL ?? 'http://127.0.0.1:8081';
const statsUrl = env.STATS_URL ?? 'http://127.0.0.1:8082/stats';
const appId = env.APP_ID ?? 'demo';
const secret = env.APP_SECRET ?? 'sk_demo_not_a_real_key';
const maxOps = Number(env.BATCH_MAX_OPS ?? 10);
const users = 200;

async function counters(): Promise<UpstreamCounters> {
  const res = await fetch(statsUrl, { signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as UpstreamCounters;
}

/** Waits for every replica's readiness (compose starts them together); bounded. */
async function waitReady(): Promise<void> {
  const deadline = Date.now() + 60_000;
  const admin = (env.PROXY_ADMIN_URLS ?? '').split(',').filter(Boolean);
  for (const url of admin) {
    for (;;) {
      const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`${url}/readyz not ready after 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

await waitReady();
await seed(upstreamUrl, appId, secret, users);
console.log(`load on ${targets.join(', ')}`);
const rows = await runScenario({
  targets,
  appId,
  secret,
  phases: DEFAULT_PHASES,
  users,
  timeoutMs: 15_000,
  upstreamCounters: counters,
  log: (line) => console.log(line),
});
const total = totalRow(rows);
console.log(`\n${renderTable([...rows, total], maxOps)}\n`);
process.exitCode = total.ok === total.callsIn ? 0 : 1;
