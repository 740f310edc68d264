// `node test/bench/dist/bench/promises.js [build.js …]`: the async resources a server creates per
// answered call — promises, nextTick callbacks, timers — counted by an async_hooks hook preloaded into
// it (async-count.ts), under the capacity load (64 callers, closed loop, 3 s warm-up, 3 s counted).
// Exact counts, not timings: what a change to the hot path removes shows here even when CPU time on a
// busy machine cannot resolve it. Rows: the bare node:http floor, then each proxy build named (default:
// apps/proxy/dist/main.js).

import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProxyProcess } from '../harness/process.js';
import { PROXY_ENV } from './capacity.js';
import { APP_ID, APPS, pidOf, repoRoot, SECRET } from './context.js';
import { closedLoop, httpSend, pool, putUser, sleep } from './load.js';
import { num, table } from './report.js';
import { startUpstream } from './upstream.js';

const TYPES = ['PROMISE', 'TickObject', 'Timeout', 'Immediate'] as const;
const hook = fileURLToPath(new URL('./async-count.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'bench-async-'));

async function perCall(url: string, pid: number, file: string): Promise<Record<string, number>> {
  const snapshot = async () => {
    process.kill(pid, 'SIGUSR2');
    for (let i = 0; i < 50; i++) {
      await sleep(20);
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
      } catch {
        // Not written yet.
      }
    }
    throw new Error(`no counts from pid ${pid}`);
  };
  const p = pool(url, 64);
  try {
    const run = closedLoop({ send: httpSend([p], putUser(APP_ID, SECRET)), callers: 64 });
    await sleep(3000);
    rmSync(file, { force: true });
    const a = await snapshot();
    const c0 = run.counts().completed;
    await sleep(3000);
    rmSync(file, { force: true });
    const b = await snapshot();
    const calls = run.counts().completed - c0;
    await run.stop(10_000);
    return Object.fromEntries(TYPES.map((t) => [t, ((b[t] ?? 0) - (a[t] ?? 0)) / calls]));
  } finally {
    await p.close();
  }
}

async function bare(): Promise<Record<string, number>> {
  const file = join(dir, 'bare.json');
  const child = fork(fileURLToPath(new URL('./bare-server.js', import.meta.url)), [], {
    execArgv: ['--import', hook],
    env: { PATH: process.env.PATH ?? '', BENCH_ASYNC_COUNT_FILE: file },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const port = await new Promise<number>((resolve) =>
      child.once('message', (m: { port: number }) => resolve(m.port)),
    );
    return await perCall(`http://127.0.0.1:${port}`, child.pid ?? 0, file);
  } finally {
    child.kill();
  }
}

async function proxy(entry: string, upstreamUrl: string, n: number): Promise<Record<string, number>> {
  const file = join(dir, `proxy-${n}.json`);
  const p = await startProxyProcess(
    { ...PROXY_ENV(upstreamUrl, 10), LOG_LEVEL: 'info', BATCH_MAX_OPS: '10', BENCH_ASYNC_COUNT_FILE: file },
    { entry, killAfterMs: 10_000, nodeArgs: ['--import', hook] },
  );
  try {
    return await perCall(p.url, pidOf(p), file);
  } finally {
    await p.stop();
  }
}

const builds = process.argv.slice(2).filter((a) => a !== '--');
if (builds.length === 0) builds.push(join(repoRoot(), 'apps/proxy/dist/main.js'));
const upstream = await startUpstream({ apps: APPS });
try {
  const rows: Array<[string, Record<string, number>]> = [['bare node:http', await bare()]];
  for (const [i, entry] of builds.entries()) rows.push([entry, await proxy(entry, upstream.url, i)]);
  console.log(
    table(
      ['server', ...TYPES.map((t) => `${t} per call`)],
      rows.map(([name, c]) => [name, ...TYPES.map((t) => num(c[t] ?? 0, 2))]),
    ),
  );
} finally {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
