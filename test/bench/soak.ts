// `pnpm soak` (issue #34): the fleet soak — two replicas and Redis under an open-loop load with churn,
// Redis restarts and upstream 5xx bursts (test/chaos/soak-engine.ts). A benchmark, not a CI test
// (test/chaos/soak.test.ts runs two minutes of it). Writes test/bench/soak.md and soak.svg.
//
//   pnpm soak                                   an hour at 1,000 calls/s
//   pnpm soak -- --minutes 10 --rate 400        shorter, slower (every interval scales with it)
//   pnpm soak -- --minutes 20 --rate 400 --sample-seconds 30

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSoak, soakMarkdown, soakSvg } from '../chaos/soak-engine.js';
import { repoRoot } from '../harness/repo-root.js';

function arg(name: string, fallback: number): number {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!(value > 0)) throw new Error(`--${name} wants a positive number, got ${args[i + 1]}`);
  return value;
}

async function main(): Promise<void> {
  const minutes = arg('minutes', 60);
  const rate = arg('rate', 1_000);
  const durationMs = minutes * 60_000;
  const sampleSeconds = arg('sample-seconds', durationMs / 60 / 1000);
  console.log(`soak: ${minutes} min at ${rate} calls/s, sampled every ${sampleSeconds} s`);
  const result = await runSoak({
    durationMs,
    ratePerSec: rate,
    sampleEveryMs: sampleSeconds * 1000,
    log: (line) => console.log(line),
  });
  const dir = join(repoRoot(), 'test/bench');
  writeFileSync(join(dir, 'soak.svg'), soakSvg(result));
  writeFileSync(join(dir, 'soak.md'), soakMarkdown(result, 'soak.svg'));
  console.log(
    `soak: sent ${result.sent}, answered ${result.answered}, lost ${result.lost}, duplicated ${result.duplicated}, ` +
      `transport errors ${JSON.stringify(result.transportErrors)}; wrote test/bench/soak.md and soak.svg`,
  );
  process.exitCode = result.lost === 0 && result.duplicated === 0 ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
