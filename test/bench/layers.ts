// `node test/bench/dist/bench/layers.js`: what each layer of the edge's stack costs per call before the
// proxy does any work — node:http alone, @hono/node-server's listener, a Hono app — under the capacity
// scenario's closed loop (64 callers, PUTs), alternating rounds in one run. The proxy's data port is
// node's listener itself since issue #17's fifth round; this shows what that removed.

import { startServerScript } from './bare.js';
import { APP_ID, SECRET } from './context.js';
import { closedLoop, httpSend, percentile, pool, putUser, sleep } from './load.js';
import { cpuMs } from './proc.js';
import { num, table } from './report.js';

const LAYERS = ['bare', 'node-server', 'hono'] as const;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

async function round(url: string, pid: number, warmMs: number, measureMs: number): Promise<number> {
  const p = pool(url, 64);
  try {
    const run = closedLoop({ send: httpSend([p], putUser(APP_ID, SECRET)), callers: 64 });
    await sleep(warmMs);
    const [c0, cpu0] = [run.counts().completed, cpuMs(pid)];
    await sleep(measureMs);
    const [c1, cpu1] = [run.counts().completed, cpuMs(pid)];
    await run.stop(10_000);
    return ((cpu1 - cpu0) * 1000) / (c1 - c0);
  } finally {
    await p.close();
  }
}

const servers = [];
for (const layer of LAYERS) {
  servers.push({ layer, server: await startServerScript('layer-server.js', [layer]), runs: [] as number[] });
}
try {
  for (const s of servers) await round(s.server.url, s.server.pid, 3_000, 200);
  for (let i = 0; i < ROUNDS; i++) {
    for (const s of servers) s.runs.push(await round(s.server.url, s.server.pid, 300, 2_000));
  }
} finally {
  for (const s of servers) await s.server.stop();
}
const bare = percentile(servers[0]?.runs ?? [], 50);
console.log(
  table(
    ['layer', 'median CPU per call', 'runs (µs)', '× bare node'],
    servers.map((s) => [
      s.layer,
      `${num(percentile(s.runs, 50), 1)} µs`,
      s.runs.map((r) => num(r, 0)).join(', '),
      num(percentile(s.runs, 50) / bare, 2),
    ]),
  ),
);
process.exit(0);
