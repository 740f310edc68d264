// `node test/bench/dist/bench/engine-turns.js`: the engine's CPU per call, in process, when several
// calls arrive in one event-loop turn — with the pump's pass deferred to the end of the turn (the
// real clock's `defer`, one pass per turn) and without (a pass per arrival and per answer). Real
// time, an upstream that answers at once, the default 10 ms window and a bucket that never runs dry:
// only the engine's own work is measured (process CPU time), both modes alternating in one run.
//
//   node test/bench/dist/bench/engine-turns.js

import { performance } from 'node:perf_hooks';
import { type Clock, realClock, Scheduler, type UpstreamRequest } from '@batch-proxy/core';
import { schedulerOptions } from '@batch-proxy/core/testing';
import { percentile } from './load.js';
import { num, table } from './report.js';

const CALLS = Number(process.env.ENGINE_CALLS ?? 20_000);
const ROUNDS = Number(process.env.ENGINE_ROUNDS ?? 5);
const BURSTS = [1, 10, 50];

type Raw = [number, string, string, unknown?];

const upstream = {
  call: async (request: UpstreamRequest) => {
    const ops = JSON.parse(request.body ?? '[]') as Raw[];
    return { status: 200, headers: {}, body: JSON.stringify(ops.map(([seq]) => [seq, 200, {}])) };
  },
};

const immediate: Clock = { ...realClock, defer: undefined };
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** CPU µs per call: CALLS PUTs to distinct users, `burst` of them per event-loop turn. */
async function run(clock: Clock, burst: number): Promise<number> {
  const scheduler = new Scheduler(
    schedulerOptions({
      upstream,
      clock,
      windowMs: 10,
      batchLimit: { ratePerSec: 10_000_000, burst: 1_000_000 },
      maxWaitMs: 60_000,
      queueMaxOps: CALLS + 1,
    }),
  );
  const answers: Array<Promise<unknown>> = [];
  const start = process.cpuUsage();
  const began = performance.now();
  for (let i = 0; i < CALLS; i += burst) {
    for (let j = i; j < Math.min(CALLS, i + burst); j++)
      answers.push(
        scheduler.submit({
          appId: 'app',
          credential: 'k',
          op: { method: 'PUT', path: `/users/u${j}`, query: {}, body: '{"a":1}', apiVersion: undefined },
        }),
      );
    await turn();
  }
  await Promise.all(answers);
  const used = process.cpuUsage(start);
  if (performance.now() - began > 60_000) throw new Error('a run took over a minute');
  await scheduler.drain();
  return (used.user + used.system) / CALLS;
}

async function main(): Promise<void> {
  const modes = [
    { name: 'a pass per arrival and answer', clock: immediate },
    { name: 'one pass per turn (Clock.defer)', clock: realClock },
  ];
  const samples = new Map<string, number[]>();
  // One unrecorded pass each: the JIT warms on the same work.
  for (const m of modes) for (const b of BURSTS) await run(m.clock, b);
  for (let round = 0; round < ROUNDS; round++)
    for (const b of BURSTS)
      for (const m of modes) {
        const key = `${m.name}\n${b}`;
        samples.set(key, [...(samples.get(key) ?? []), await run(m.clock, b)]);
      }
  console.log(
    table(
      ['calls per turn', ...modes.map((m) => `${m.name}: median CPU per call`)],
      BURSTS.map((b) => [
        String(b),
        ...modes.map((m) => `${num(percentile(samples.get(`${m.name}\n${b}`) ?? [], 50), 1)} µs`),
      ]),
    ),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
