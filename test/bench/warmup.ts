// `node test/bench/dist/bench/warmup.js [seconds]`: CPU per answered call, second by second, of a fresh
// bare node:http server and a fresh proxy under the capacity load (64 callers, closed loop), from their
// first call. How long the JIT takes to settle: the capacity scenario warms each target this long
// before its first measured round.

import { startBareServer } from './bare.js';
import { PROXY_ENV } from './capacity.js';
import { APP_ID, APPS, pidOf, SECRET, startProxy } from './context.js';
import { closedLoop, httpSend, pool, putUser, sleep } from './load.js';
import { cpuMs } from './proc.js';
import { num, table } from './report.js';
import { startUpstream } from './upstream.js';

const seconds = Number(process.argv[2] ?? 10);

async function curve(url: string, pid: number): Promise<number[]> {
  const p = pool(url, 64);
  try {
    const run = closedLoop({ send: httpSend([p], putUser(APP_ID, SECRET)), callers: 64 });
    const perSecond: number[] = [];
    for (let i = 0; i < seconds; i++) {
      const [c0, cpu0] = [run.counts().completed, cpuMs(pid)];
      await sleep(1000);
      const [c1, cpu1] = [run.counts().completed, cpuMs(pid)];
      perSecond.push(((cpu1 - cpu0) * 1000) / Math.max(1, c1 - c0));
    }
    await run.stop(10_000);
    return perSecond;
  } finally {
    await p.close();
  }
}

const upstream = await startUpstream({ apps: APPS });
const bare = await startBareServer();
const proxy = await startProxy({ ...PROXY_ENV(upstream.url, 10), LOG_LEVEL: 'info' });
try {
  const rows = [
    ['bare node:http', ...(await curve(bare.url, bare.pid)).map((us) => num(us, 0))],
    ['proxy', ...(await curve(proxy.url, pidOf(proxy))).map((us) => num(us, 0))],
  ];
  console.log('CPU per answered call (µs), each second from the first call:\n');
  console.log(table(['server', ...Array.from({ length: seconds }, (_, i) => `s${i + 1}`)], rows));
} finally {
  await proxy.stop();
  await bare.stop();
  await upstream.close();
}
process.exit(0);
