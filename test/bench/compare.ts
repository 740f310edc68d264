// `BENCH_BASELINE_MAIN=<other build>/apps/proxy/dist/main.js node test/bench/dist/bench/compare.js`:
// this build against another (the code before a change) in one run, so both see the same machine:
// CPU per call under the bench:guard load (each at its own defaults, LOG_LEVEL=info, beside the bare
// node:http floor and the minimal batcher — the floor for any Node batching proxy, minimal-batcher.ts —
// alternating rounds), then start-up CPU time and idle RSS (alternating starts).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBareServer, startServerScript } from './bare.js';
import { APPS, pidOf, repoRoot, startProxy } from './context.js';
import { alternateRounds } from './cpu-run.js';
import { percentile } from './load.js';
import { num, table } from './report.js';
import { type Run, startOnce } from './startup.js';
import { startUpstream } from './upstream.js';

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const RUN = { ratePerSec: 2000, warmMs: 500, measureMs: 2000 };
const MINIMAL = 'minimal batcher';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const STARTS = Number(process.env.BENCH_STARTS ?? 5);

async function main(): Promise<number> {
  const baseline = process.env.BENCH_BASELINE_MAIN;
  if (!baseline) {
    console.error('set BENCH_BASELINE_MAIN to the other build’s apps/proxy/dist/main.js');
    return 2;
  }
  const builds = [
    { name: 'before (BENCH_BASELINE_MAIN)', main: baseline },
    { name: 'after (this build)', main: join(repoRoot(), 'apps/proxy/dist/main.js') },
  ];
  const load = loadavg();
  console.log(`load average at start: ${load}`);

  const upstream = await startUpstream({ apps: APPS });
  const bare = await startBareServer();
  // The proxy's default window (BATCH_WINDOW_MS 10), so both batch alike.
  const minimal = await startServerScript('minimal-batcher.js', [upstream.url, '10']);
  const env = {
    UPSTREAM_URL: upstream.url,
    BATCH_RATE_PER_SEC: '100000',
    BATCH_BURST: '100000',
    LOG_LEVEL: 'info',
  };
  const proxies = [];
  for (const b of builds) proxies.push(await startProxy(env, b.main));
  let cpu = new Map<string, number[]>();
  let failed = 0;
  try {
    const targets = [
      { name: MINIMAL, url: minimal.url, pid: minimal.pid },
      ...proxies.map((p, i) => ({ name: builds[i]?.name ?? '', url: p.url, pid: pidOf(p) })),
    ];
    ({ samples: cpu, failed } = await alternateRounds(bare, targets, ROUNDS, RUN));
  } finally {
    for (const p of proxies) await p.stop();
    await minimal.stop();
    await bare.stop();
    await upstream.close();
  }
  const median = (name: string) => percentile(cpu.get(name) ?? [], 50);
  console.log(
    table(
      ['target', 'median CPU per call', 'runs (µs)', '× bare node', '× minimal batcher'],
      ['bare node', MINIMAL, ...builds.map((b) => b.name)].map((name) => [
        name,
        `${num(median(name), 1)} µs`,
        (cpu.get(name) ?? []).map((us) => num(us, 0)).join(', '),
        num(median(name) / median('bare node'), 2),
        num(median(name) / median(MINIMAL), 2),
      ]),
    ),
  );

  const starts = new Map<string, Run[]>();
  for (let i = 0; i < STARTS; i++) {
    for (const b of builds)
      starts.set(b.name, [
        ...(starts.get(b.name) ?? []),
        await startOnce({ starts: 1, settleMs: 2000 }, b.main),
      ]);
  }
  const med = (name: string, k: keyof Run) =>
    percentile(
      (starts.get(name) ?? []).map((r) => r[k]),
      50,
    );
  console.log(
    table(
      ['build', 'spawn → ready (median)', 'CPU time until ready (median)', 'idle RSS (median)'],
      builds.map((b) => [
        b.name,
        `${num(med(b.name, 'readyMs'), 0)} ms`,
        `${num(med(b.name, 'readyCpuMs'), 0)} ms`,
        `${num(med(b.name, 'idleRss') / 2 ** 20, 1)} MiB`,
      ]),
    ),
  );
  const end = loadavg();
  console.log(`load average at end: ${end}`);
  if (failed > 0) console.error(`compare: ${failed} calls failed; the measurement is not valid`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
