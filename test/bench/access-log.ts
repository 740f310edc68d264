// `node test/bench/dist/bench/access-log.js`: what each ACCESS_LOG policy costs per call, beside the
// bare node:http floor and a proxy with no access log at all (LOG_LEVEL=warn), in alternating rounds of
// the same open-loop load as bench:guard. Ratios to the floor within one run are the comparable numbers.

import { startBareServer } from './bare.js';
import { APPS, pidOf, startProxy } from './context.js';
import { alternateRounds } from './cpu-run.js';
import { percentile } from './load.js';
import { num, table } from './report.js';
import { startUpstream } from './upstream.js';

const RUN = { ratePerSec: 2000, warmMs: 500, measureMs: 2000 };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const VARIANTS: ReadonlyArray<{ name: string; env: Record<string, string> }> = [
  { name: 'ACCESS_LOG=all', env: { LOG_LEVEL: 'info', ACCESS_LOG: 'all' } },
  { name: 'ACCESS_LOG=sampled (1 in 100)', env: { LOG_LEVEL: 'info', ACCESS_LOG: 'sampled' } },
  { name: 'ACCESS_LOG=errors', env: { LOG_LEVEL: 'info', ACCESS_LOG: 'errors' } },
  { name: 'no access log (LOG_LEVEL=warn)', env: { LOG_LEVEL: 'warn' } },
];

async function main(): Promise<number> {
  const upstream = await startUpstream({ apps: APPS });
  const bare = await startBareServer();
  const proxies = [];
  for (const v of VARIANTS) {
    proxies.push(
      await startProxy({
        UPSTREAM_URL: upstream.url,
        BATCH_RATE_PER_SEC: '100000',
        BATCH_BURST: '100000',
        ...v.env,
      }),
    );
  }
  let samples = new Map<string, number[]>();
  let failed = 0;
  try {
    const targets = proxies.map((p, i) => ({ name: VARIANTS[i]?.name ?? '', url: p.url, pid: pidOf(p) }));
    ({ samples, failed } = await alternateRounds(bare, targets, ROUNDS, RUN));
  } finally {
    for (const p of proxies) await p.stop();
    await bare.stop();
    await upstream.close();
  }
  const median = (name: string) => percentile(samples.get(name) ?? [], 50);
  const floor = median('bare node');
  console.log(
    table(
      ['target', 'median CPU per call', 'runs', '× bare node'],
      ['bare node', ...VARIANTS.map((v) => v.name)].map((name) => [
        name,
        `${num(median(name), 1)} µs`,
        (samples.get(name) ?? []).map((us) => num(us, 0)).join(', '),
        num(median(name) / floor, 2),
      ]),
    ),
  );
  if (failed > 0) console.error(`access-log bench: ${failed} calls failed; the measurement is not valid`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
