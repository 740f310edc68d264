// `pnpm bench:guard`: the CI check against a CPU regression on the hot path. The bare node:http floor
// and the proxy (access log at its default) each take the same open-loop load (a fixed rate, so both do
// the same number of calls per event-loop turn whatever the machine's speed), in alternating rounds;
// the proxy's CPU per call divided by the floor's, in one run, is compared with the committed ratio
// (cpu-guard.json). A ratio, not an absolute: both sides see the same machine, so a slower or busier
// CI runner moves both. Fails when the ratio rises more than TOLERANCE above the committed one.
//
//   pnpm bench:guard             measure and compare (exit 1 on a regression)
//   pnpm bench:guard --update    measure and write the new ratio into cpu-guard.json

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBareServer } from './bare.js';
import { APPS, pidOf, repoRoot, startProxy } from './context.js';
import { cpuPerCall } from './cpu-run.js';
import { percentile } from './load.js';
import { num } from './report.js';
import { startUpstream } from './upstream.js';

const TOLERANCE = 1.3;
const RATE_PER_SEC = 2000;
const WARM_MS = 500;
const MEASURE_MS = 2000;
const ROUNDS = 5;
const FILE = join(repoRoot(), 'test/bench/cpu-guard.json');

interface Committed {
  ratio: number;
  proxyCpuPerCallUs: number;
  bareCpuPerCallUs: number;
  measuredAt: string;
}

interface Row {
  target: 'bare node' | 'proxy';
  cpuPerCallUs: number;
  failed: number;
}

const RUN = { ratePerSec: RATE_PER_SEC, warmMs: WARM_MS, measureMs: MEASURE_MS };

async function run(target: Row['target'], url: string, pid: number): Promise<Row> {
  return { target, ...(await cpuPerCall(url, pid, RUN)) };
}

async function measure(): Promise<Row[]> {
  const upstream = await startUpstream({ apps: APPS });
  const bare = await startBareServer();
  const proxy = await startProxy({
    UPSTREAM_URL: upstream.url,
    BATCH_RATE_PER_SEC: '100000',
    BATCH_BURST: '100000',
    LOG_LEVEL: 'info',
  });
  const rows: Row[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      rows.push(await run('bare node', bare.url, bare.pid));
      rows.push(await run('proxy', proxy.url, pidOf(proxy)));
    }
  } finally {
    await proxy.stop();
    await bare.stop();
    await upstream.close();
  }
  return rows;
}

async function main(): Promise<number> {
  const update = process.argv.includes('--update');
  const rows = await measure();
  for (const r of rows) {
    console.log(
      `${r.target.padEnd(9)}  ${num(r.cpuPerCallUs, 1).padStart(6)} µs CPU per call  failed ${r.failed}`,
    );
  }
  if (rows.some((r) => r.failed > 0)) {
    console.error('bench:guard: some calls failed; the measurement is not valid');
    return 1;
  }
  const median = (t: Row['target']) =>
    percentile(
      rows.filter((r) => r.target === t).map((r) => r.cpuPerCallUs),
      50,
    );
  const proxy = median('proxy');
  const bare = median('bare node');
  const measured: Committed = {
    ratio: proxy / bare,
    proxyCpuPerCallUs: proxy,
    bareCpuPerCallUs: bare,
    measuredAt: new Date().toISOString(),
  };
  if (update) {
    writeFileSync(FILE, `${JSON.stringify(measured, null, 2)}\n`);
    console.log(`bench:guard: wrote ratio ${num(measured.ratio, 2)} to ${FILE}`);
    return 0;
  }
  const committed = JSON.parse(readFileSync(FILE, 'utf8')) as Committed;
  const limit = committed.ratio * TOLERANCE;
  const verdict = measured.ratio <= limit ? 'ok' : 'REGRESSION';
  console.log(
    `bench:guard: proxy ${num(proxy, 1)} µs / bare node ${num(bare, 1)} µs = ${num(measured.ratio, 2)}× ` +
      `(committed ${num(committed.ratio, 2)}×, limit ${num(limit, 2)}×): ${verdict}`,
  );
  return verdict === 'ok' ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
