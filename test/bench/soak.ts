// `pnpm soak` (issue #34): the fleet soak — two replicas and Redis under an open-loop load with churn,
// Redis restarts and upstream 5xx bursts (test/chaos/soak-engine.ts; the fake upstream runs in a child
// process of its own, test/chaos/soak-upstream.ts). A benchmark, not a CI test (test/chaos/soak.test.ts
// runs two minutes of it). Writes test/bench/soak.md and soak.svg.
//
//   pnpm soak                                   an hour at 1,000 calls/s, sampled every minute
//   pnpm soak -- --minutes 10 --rate 400        shorter, slower (every interval scales with it)
//   pnpm soak -- --minutes 3 --rate 1000 --sample-seconds 15
//   ... --out /tmp/soak                         write soak.md and soak.svg there instead

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSoak, soakMarkdown, soakSvg, soakTrends } from '../chaos/soak-engine.js';
import { repoRoot } from '../harness/repo-root.js';

const args = process.argv.slice(2).filter((a) => a !== '--');

function arg(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!(value > 0)) throw new Error(`--${name} wants a positive number, got ${args[i + 1]}`);
  return value;
}

/** Below this line soak.md is written by hand (e.g. the CI-size run) and kept when the run rewrites it. */
const KEPT = '<!-- Kept across runs of pnpm soak: written by hand below this line. -->';

/** The hand-written end of an existing soak.md, from the KEPT line on ('' when there is none). */
function keptPart(path: string): string {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  const at = text.indexOf(KEPT);
  return at < 0 ? '' : text.slice(at).trim();
}

async function main(): Promise<void> {
  const minutes = arg('minutes', 60);
  const rate = arg('rate', 1_000);
  const durationMs = minutes * 60_000;
  const sampleSeconds = arg('sample-seconds', durationMs / 60 / 1000);
  const outAt = args.indexOf('--out');
  const dir = outAt >= 0 ? (args[outAt + 1] ?? '.') : join(repoRoot(), 'test/bench');
  console.log(
    `soak: ${minutes} min at ${rate} calls/s, sampled every ${sampleSeconds} s; pid ${process.pid}`,
  );
  const result = await runSoak({
    durationMs,
    ratePerSec: rate,
    sampleEveryMs: sampleSeconds * 1000,
    log: (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'soak.svg'), soakSvg(result));
  const md = join(dir, 'soak.md');
  const kept = keptPart(md);
  writeFileSync(md, `${soakMarkdown(result, 'soak.svg').trimEnd()}\n${kept ? `\n${kept}\n` : ''}`);
  const t = soakTrends(result);
  console.log(
    `soak: sent ${result.sent}, answered ${result.answered}, lost ${result.lost}, duplicated ${result.duplicated}, ` +
      `transport errors ${JSON.stringify(result.transportErrors)}, answers ${JSON.stringify(result.statuses)}; ` +
      `heap slope ${t.heap.map((h) => h.perMin.toFixed(3)).join(' / ')} MB/min, p99 slope ${t.p99PerMin.toFixed(2)} ms/min; ` +
      `wrote ${join(dir, 'soak.md')} and soak.svg`,
  );
  if (result.choreFailures.length > 0) console.log(`soak: chores failed: ${result.choreFailures.join('; ')}`);
  process.exitCode =
    result.lost === 0 && result.duplicated === 0 && result.choreFailures.length === 0 ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
