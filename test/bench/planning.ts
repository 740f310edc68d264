// `pnpm bench:planning`: the engine's CPU per call as the groups queued grow (SPEC §8d: a planning
// pass costs O(groups ready to leave), not O(everything queued)). In process, in real time, with an
// upstream that answers at once: only the engine's own work is measured (process CPU time).
//
// Per row, N groups (each call with its own credential: its own group) wait while the app's batch
// budget is paused (the upstream answered a first call 429 with a Retry-After). Then:
//   - arrive: 2,000 more calls, one new group each, arrive while it is paused — CPU per arrival;
//   - drain: the pause ends and every group leaves (the bucket's burst covers them all) — CPU per
//     call sent and answered.
// Flat columns from 100 to 10,000 groups are the target; before the fix an arrival planned every
// group queued (O(N) each) and each send planned them all again.
//
//   pnpm bench:planning

import { performance } from 'node:perf_hooks';
import { Scheduler, type UpstreamRequest } from '@batch-proxy/core';
import { schedulerOptions } from '@batch-proxy/core/testing';
import { num, table } from './report.js';

const ARRIVALS = 2_000;
const ROWS = (process.env.PLANNING_ROWS ?? '100,1000,10000').split(',').map(Number);
const LIMIT = { ratePerSec: 10_000_000, burst: 100_000 };
/** The first call's Retry-After, in seconds: the filling and the arrivals happen inside it. */
const PAUSE_S = Number(process.env.PLANNING_PAUSE_S ?? 4);

type Raw = [number, string, string, unknown?];

/**
 * TalkJS-shaped, answered at once: the first batch call 429 with `Retry-After: PAUSE_S` (the app's
 * budget pauses, as the issue measured it), then every op 200 with a small body.
 */
function upstream() {
  let calls = 0;
  return {
    call: async (request: UpstreamRequest) => {
      if (calls++ === 0) return { status: 429, headers: { 'retry-after': String(PAUSE_S) }, body: '{}' };
      const ops = JSON.parse(request.body ?? '[]') as Raw[];
      return { status: 200, headers: {}, body: JSON.stringify(ops.map(([seq]) => [seq, 200, { ok: true }])) };
    },
  };
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function row(groups: number): Promise<[number, number, number]> {
  const scheduler = new Scheduler(
    schedulerOptions({
      upstream: upstream(),
      maxAttempts: 2,
      batchLimit: LIMIT,
      maxWaitMs: 120_000,
      queueMaxOps: groups + ARRIVALS + 1,
    }),
  );
  const op = (i: number) => ({
    method: 'GET' as const,
    path: `/users/u${i}`,
    query: {},
    body: undefined,
    apiVersion: undefined,
  });
  const answers: Promise<unknown>[] = [];
  const paused = performance.now();
  answers.push(scheduler.submit({ appId: 'app', credential: 'first', op: op(-1) }));
  await sleep(50); // its 429 has paused the budget
  for (let i = 0; i < groups; i++) {
    answers.push(scheduler.submit({ appId: 'app', credential: `k${i}`, op: op(i) }));
    if (i % 500 === 0) await sleep(1);
  }
  await sleep(50); // windows over
  const arriving = process.cpuUsage();
  for (let i = groups; i < groups + ARRIVALS; i++) {
    answers.push(scheduler.submit({ appId: 'app', credential: `k${i}`, op: op(i) }));
    if (i % 20 === 0) await sleep(1);
  }
  await sleep(50);
  const arriveMs = cpuMs(arriving);
  if (performance.now() - paused > PAUSE_S * 1000 - 100) throw new Error('the pause ended too soon');
  const draining = process.cpuUsage();
  await Promise.all(answers);
  const drainMs = cpuMs(draining);
  if (scheduler.pending !== 0) throw new Error(`${scheduler.pending} calls left unanswered`);
  return [groups, (arriveMs * 1000) / ARRIVALS, (drainMs * 1000) / (groups + ARRIVALS + 1)];
}

async function main(): Promise<void> {
  await row(1_000); // warm-up: JIT
  const rows: string[][] = [];
  for (const groups of ROWS) {
    const [n, arrive, drain] = await row(groups);
    rows.push([String(n), num(arrive, 1), num(drain, 1)]);
  }
  console.log(table(['groups queued', 'µs CPU per arrival (paused)', 'µs CPU per call (drain)'], rows));
}

await main();
