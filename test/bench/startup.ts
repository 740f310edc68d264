// Scenario 6 — start-up: from spawning the built proxy to its first 200 on /readyz, and its resident
// memory once idle, over several starts (in-process limiter, the default). /readyz is polled every
// 2 ms over a fresh connection, so the figure is within a few ms of the real moment.

import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../harness/ports.js';
import { repoRoot } from './context.js';
import { percentile, sleep } from './load.js';
import { cpuMs, rssBytes } from './proc.js';
import { ms, num, type Report } from './report.js';

export interface StartupOptions {
  starts: number;
  /** How long the proxy idles after ready before its RSS is read. */
  settleMs: number;
}

function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** One start of the proxy at `main` (default: this repository's build). */
export async function startOnce(
  opts: StartupOptions,
  main = join(repoRoot(), 'apps/proxy/dist/main.js'),
): Promise<Run> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const started = performance.now();
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      UPSTREAM_URL: 'http://127.0.0.1:9',
    },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode} during start-up`);
      if ((await readyz(adminPort)) === 200) break;
      if (performance.now() - started > 15_000) throw new Error('proxy not ready after 15 s');
      await sleep(2);
    }
    const readyMs = performance.now() - started;
    // CPU time spent getting ready: on a busy machine the wall time waits for a core, this does not.
    const readyCpuMs = cpuMs(child.pid ?? -1);
    await sleep(opts.settleMs);
    return { readyMs, readyCpuMs, idleRss: rssBytes(child.pid ?? -1) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export interface Run {
  readyMs: number;
  readyCpuMs: number;
  idleRss: number;
}

export async function startup(
  report: Report,
  opts: StartupOptions,
): Promise<{ readyMs: number; readyCpuMs: number; idleRss: number }> {
  const runs: Run[] = [];
  for (let i = 0; i < opts.starts; i++) runs.push(await startOnce(opts));
  const ready = runs.map((r) => r.readyMs);
  const rss = runs.map((r) => r.idleRss);
  const cpu = runs.map((r) => r.readyCpuMs);
  const result = {
    readyMs: percentile(ready, 50),
    readyCpuMs: percentile(cpu, 50),
    idleRss: percentile(rss, 50),
  };
  report.table(
    ['', 'median', 'min', 'max'],
    [
      ['spawn → /readyz 200', ms(result.readyMs, 0), ms(Math.min(...ready), 0), ms(Math.max(...ready), 0)],
      [
        'CPU time (user + system) until ready',
        ms(result.readyCpuMs, 0),
        ms(Math.min(...cpu), 0),
        ms(Math.max(...cpu), 0),
      ],
      [
        `idle RSS (${num(opts.settleMs / 1000, 1)} s after ready)`,
        `${num(result.idleRss / 2 ** 20, 1)} MiB`,
        `${num(Math.min(...rss) / 2 ** 20, 1)} MiB`,
        `${num(Math.max(...rss) / 2 ** 20, 1)} MiB`,
      ],
    ],
  );
  report.text(
    `Targets: ready ≤ 500 ms (${result.readyMs <= 500 ? 'met' : 'MISSED'}), idle RSS ≤ 60 MiB ` +
      `(${result.idleRss <= 60 * 2 ** 20 ? 'met' : 'MISSED'}).`,
  );
  return result;
}
