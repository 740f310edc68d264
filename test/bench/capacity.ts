// Scenario 2 — capacity: closed-loop load (many callers, each sending its next call on the answer)
// against a bare node:http server answering directly (the floor for any Node server), nginx as a plain
// keep-alive reverse proxy, a minimal Node batcher (minimal-batcher.ts: the floor for any Node batching
// proxy) and our proxy, the last three in front of the same unlimited fake upstream, in alternating
// runs. Every call writes a distinct resource, so every op is batchable with every other. CPU time
// comes from /proc/<pid>/stat before and after each run.

import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startBareServer, startServerScript } from './bare.js';
import { APP_ID, APPS, pidOf, SECRET, startProxy } from './context.js';
import { closedLoop, httpSend, percentile, pool, putUser, sleep } from './load.js';
import { startNginx } from './nginx.js';
import { cpuMs, cpuTicks, kernelShare, placement, type Ticks, ticksToMs, treeCpuTicks } from './proc.js';
import { type SelfTime, topSelfTime } from './profile.js';
import { ms, num, pct, type Report } from './report.js';
import { delta, startUpstream, type UpstreamProcess } from './upstream.js';

export interface CapacityOptions {
  callers: number;
  warmMs: number;
  /**
   * The first round's warm-up, per target (default: warmMs). The proxy's JIT takes some 6 s of this
   * load to settle (measured: 830, 290, 150, 150, 100, 96, 86 µs per call in its first seconds, the
   * bare server by its second), so a 1 s warm-up made round 1 (and the profiled run, round 0) a
   * measure of start-up.
   */
  firstWarmMs?: number;
  durationMs: number;
  /** Each round measures every target once, in order. */
  rounds: number;
  windowMs: number;
  /** Where the CPU profile of one extra proxy run goes (undefined: no profile). */
  profileDir: string | undefined;
  repoRoot: string;
  /** Which targets each round measures, in order (default: all four). */
  targets?: readonly TargetName[];
  /** Extra proxy settings (e.g. LOG_LEVEL). */
  proxyEnv?: Record<string, string>;
  /**
   * Also measure each target on a CPU of its own, the load generator and fake upstream on another
   * (default true; skipped on one CPU), and read CPU per call there. Unpinned, the proxy's CPU per call
   * swung between ~60 and ~110 µs from round to round on the same build, as the scheduler put it on a
   * CPU of its own or beside the load generator (measured 2026-11-30: 56–65 µs in every pinned round).
   */
  pin?: boolean;
}

export type TargetName = 'bare node' | 'nginx' | 'minimal batcher' | 'proxy';
export type PlacementName = 'shared' | 'own CPU';

const ALL_TARGETS: readonly TargetName[] = ['bare node', 'nginx', 'minimal batcher', 'proxy'];

export interface Row {
  round: number;
  target: TargetName;
  /** `shared`: the scheduler places every process; `own CPU`: the target alone on one CPU. */
  placement: PlacementName;
  callsPerSec: number;
  upstreamPerSec: number;
  p50: number;
  p99: number;
  cpuPerCallUs: number;
  cpuShare: number;
  /** Of the CPU time, the share spent in the kernel (stime): mostly loopback socket calls. */
  kernelShare: number;
  upstreamCpuPerCallUs: number;
  /**
   * This process's CPU per call (the closed loop's callers): with the target and the fake upstream it
   * shares the machine's cores, so calls/s is bounded by the sum of the three.
   */
  loadCpuPerCallUs: number;
  failed: number;
}

interface Target {
  name: TargetName;
  /** What to pin (with their children: nginx's workers). */
  pids: readonly number[];
  url: string;
  /** User and system ticks of everything that serves this target (nginx: master and workers). */
  ticks: () => Ticks;
}

async function measure(
  target: Target,
  upstream: UpstreamProcess,
  opts: CapacityOptions,
  round: number,
  placement: PlacementName,
  warmMs: number,
) {
  const p = pool(target.url, opts.callers);
  try {
    const run = closedLoop({ send: httpSend([p], putUser(APP_ID, SECRET)), callers: opts.callers });
    await sleep(warmMs);
    const s0 = await upstream.snapshot();
    const c0 = run.counts();
    const ticks0 = target.ticks();
    const up0 = cpuMs(upstream.pid);
    const load0 = cpuMs(process.pid);
    const t0 = performance.now();
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    run.resetLatencies();
    await sleep(opts.durationMs);
    const t1 = performance.now();
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const ticks1 = target.ticks();
    const up1 = cpuMs(upstream.pid);
    const load1 = cpuMs(process.pid);
    const c1 = run.counts();
    const cpuMsSpent = ticksToMs(ticks1) - ticksToMs(ticks0);
    const s1 = await upstream.snapshot();
    const lat = run.latencies().sort((a, b) => a - b);
    await run.stop(10_000);
    const secs = (t1 - t0) / 1000;
    const calls = c1.completed - c0.completed;
    const d = delta(s0, s1);
    const row: Row = {
      round,
      target: target.name,
      placement,
      callsPerSec: calls / secs,
      upstreamPerSec: (d.batchCalls + d.singleCalls) / secs,
      p50: percentile(lat, 50, true),
      p99: percentile(lat, 99, true),
      cpuPerCallUs: (cpuMsSpent * 1000) / calls,
      cpuShare: cpuMsSpent / (t1 - t0),
      kernelShare: kernelShare(ticks0, ticks1),
      upstreamCpuPerCallUs: ((up1 - up0) * 1000) / calls,
      loadCpuPerCallUs: ((load1 - load0) * 1000) / calls,
      failed: calls - (c1.ok - c0.ok),
    };
    return { row, window: { fromUs, toUs } };
  } finally {
    await p.close();
  }
}

export interface Profile {
  rows: SelfTime[];
  busyMs: number;
  file: string;
}

/** The proxy's settings under the capacity load (also warmup.ts and promises.ts). */
export const PROXY_ENV = (upstreamUrl: string, windowMs: number) => ({
  UPSTREAM_URL: upstreamUrl,
  BATCH_WINDOW_MS: String(windowMs),
  // Pacing is not what this scenario measures: a batch bucket that never runs dry.
  BATCH_RATE_PER_SEC: '100000',
  BATCH_BURST: '100000',
});

/** The measured rows only: alternating rounds over the targets, no report, no profile. */
export async function measureCapacity(opts: CapacityOptions): Promise<Row[]> {
  return (await runCapacity(opts)).rows;
}

async function runCapacity(
  opts: CapacityOptions,
): Promise<{ rows: Row[]; profile: Profile | undefined; nginxConf: string; pinned: boolean }> {
  const names = opts.targets ?? ALL_TARGETS;
  const rows: Row[] = [];
  let profile: Profile | undefined;
  const place = opts.pin === false ? undefined : placement();
  const pinned = place !== undefined;
  // What has started, stopped in reverse whatever fails (a start included), and the pids to unpin.
  const stops: Array<() => Promise<unknown>> = [];
  const pids: number[] = [process.pid];
  const started = <T>(it: T, stop: (it: T) => Promise<unknown>): T => {
    stops.unshift(() => stop(it));
    return it;
  };
  let nginxConf = '';
  try {
    const upstream = started(await startUpstream({ apps: APPS }), (u) => u.close());
    pids.push(upstream.pid);
    const bare = names.includes('bare node') ? started(await startBareServer(), (b) => b.stop()) : undefined;
    const nginx = names.includes('nginx')
      ? started(await startNginx(upstream.url, 1), (n) => n.stop())
      : undefined;
    nginxConf = nginx?.conf ?? '';
    const minimal = names.includes('minimal batcher')
      ? started(await startServerScript('minimal-batcher.js', [upstream.url, String(opts.windowMs)]), (m) =>
          m.stop(),
        )
      : undefined;
    const proxyEnv = { ...PROXY_ENV(upstream.url, opts.windowMs), ...opts.proxyEnv };
    const proxy = started(await startProxy(proxyEnv), (p) => p.stop());
    const load = [process.pid, upstream.pid];
    pids.push(...[bare?.pid, nginx?.pid, minimal?.pid, pidOf(proxy)].filter((p) => p !== undefined));
    const one = (name: TargetName, url: string, pid: number): Target => ({
      name,
      pids: [pid],
      url,
      ticks: () => cpuTicks(pid),
    });
    const all: Target[] = [
      ...(bare ? [one('bare node', bare.url, bare.pid)] : []),
      ...(nginx
        ? [
            {
              name: 'nginx' as const,
              pids: [nginx.pid],
              url: nginx.url,
              ticks: () => treeCpuTicks(nginx.pid),
            },
          ]
        : []),
      ...(minimal ? [one('minimal batcher', minimal.url, minimal.pid)] : []),
      one('proxy', proxy.url, pidOf(proxy)),
    ];
    const targets = names.flatMap((n) => all.filter((t) => t.name === n));
    const placements: PlacementName[] = place ? ['shared', 'own CPU'] : ['shared'];
    for (let round = 1; round <= opts.rounds; round++) {
      for (const target of targets) {
        for (const [k, where] of placements.entries()) {
          if (place && where === 'own CPU') {
            place.bind(load, place.loadCpu);
            place.bind(target.pids, place.targetCpu);
          } else place?.release([...load, ...target.pids]);
          await upstream.reset();
          const warm = round === 1 && k === 0 ? (opts.firstWarmMs ?? opts.warmMs) : opts.warmMs;
          rows.push((await measure(target, upstream, opts, round, where, warm)).row);
        }
        place?.release([...load, ...target.pids]);
      }
    }
    await proxy.stop();

    if (opts.profileDir) {
      // One more proxy run under the V8 sampling profiler, not in the table (profiling costs CPU).
      const dir = opts.profileDir;
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const profiled = await startProxy(
        {
          ...proxyEnv,
          BENCH_PROXY_MAIN: join(opts.repoRoot, 'apps/proxy/dist/main.js'),
          BENCH_PROFILE_DIR: dir,
        },
        fileURLToPath(new URL('./profiled-proxy.js', import.meta.url)),
      );
      // Profiled on its own CPU, as the CPU per call is read (the wrapper and the proxy it starts).
      const profiledPid = profiled.child.pid;
      if (place && profiledPid !== undefined) {
        place.bind(load, place.loadCpu);
        place.bind([profiledPid], place.targetCpu);
      }
      let window: { fromUs: number; toUs: number } | undefined;
      try {
        await upstream.reset();
        const none = {
          name: 'proxy' as const,
          pids: [],
          url: profiled.url,
          ticks: () => ({ user: 0, sys: 0 }),
        };
        window = (await measure(none, upstream, opts, 0, 'own CPU', opts.firstWarmMs ?? opts.warmMs)).window;
      } finally {
        await profiled.stop();
      }
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file)
        profile = { ...topSelfTime(join(dir, file), opts.repoRoot, 10, window), file: join(dir, file) };
    }
  } finally {
    // The load generator goes back to every CPU for the scenarios after this one.
    try {
      place?.release(pids);
    } catch {
      place?.release([process.pid]);
    }
    for (const stop of stops) await stop();
  }
  return { rows, profile, nginxConf, pinned };
}

export async function capacity(
  report: Report,
  opts: CapacityOptions,
): Promise<{ profile: Profile | undefined; nginxConf: string; cpuVsNginx: number; callsVsNginx: number }> {
  const { rows, profile, nginxConf, pinned } = await runCapacity(opts);
  report.text(
    pinned
      ? 'Each target is measured twice per round. **shared**: the scheduler places every process (the ' +
          'whole loopback system on two shared CPUs: calls/s is read here). **own CPU**: the target ' +
          'bound to one CPU, the load generator and the fake upstream to the other (`taskset`): CPU per ' +
          'call is read here, as a target placed beside the load generator measured up to ~1.8× its CPU ' +
          'per call on the same build; its calls/s is not compared (nginx is then bound by the load CPU, ' +
          'where its 10× more upstream calls cost the fake upstream).'
      : 'Placement: shared only (one CPU, or no `taskset`): the scheduler places the processes; CPU per ' +
          'call of a target beside the load generator can read up to ~1.8× higher.',
  );
  report.table(
    [
      'run',
      'target',
      'placement',
      'calls/s',
      'upstream calls/s',
      'p50',
      'p99',
      'CPU per call',
      'CPU busy (1 core = 100 %)',
      'of which kernel',
      'fake upstream CPU per call',
      'load generator CPU per call',
      'non-2xx',
    ],
    rows.map((r) => [
      r.round,
      r.target,
      r.placement,
      num(r.callsPerSec, 0),
      num(r.upstreamPerSec, 0),
      ms(r.p50),
      ms(r.p99),
      `${num(r.cpuPerCallUs, 1)} µs`,
      pct(r.cpuShare, 0),
      pct(r.kernelShare, 0),
      `${num(r.upstreamCpuPerCallUs, 1)} µs`,
      `${num(r.loadCpuPerCallUs, 1)} µs`,
      r.failed,
    ]),
  );
  // The median run of each target: one disturbed run on a shared machine does not move it. Calls/s
  // from the shared placement, CPU per call from the target's own CPU (when the machine could pin).
  const cpuAt: PlacementName = pinned ? 'own CPU' : 'shared';
  const median = (target: TargetName, k: 'callsPerSec' | 'cpuPerCallUs' | 'upstreamPerSec') =>
    medianOf(rows, target, k, k === 'cpuPerCallUs' ? cpuAt : 'shared');
  report.table(
    [
      'target',
      'median calls/s (shared)',
      'median upstream calls/s (shared)',
      `median CPU per call (${cpuAt})`,
      'median CPU per call (shared)',
    ],
    ALL_TARGETS.filter((t) => rows.some((r) => r.target === t)).map((t) => [
      t,
      num(median(t, 'callsPerSec'), 0),
      num(median(t, 'upstreamPerSec'), 0),
      `${num(median(t, 'cpuPerCallUs'), 1)} µs`,
      `${num(medianOf(rows, t, 'cpuPerCallUs', 'shared'), 1)} µs`,
    ]),
  );
  const cpu = median('proxy', 'cpuPerCallUs');
  report.text(
    `Proxy CPU per call is ${num(cpu / median('nginx', 'cpuPerCallUs'), 1)}× nginx's (target ≤ 2×) and ` +
      `${num(cpu / median('bare node', 'cpuPerCallUs'), 1)}× the bare node:http floor's; proxy calls/s are ` +
      `${num(median('proxy', 'callsPerSec') / median('nginx', 'callsPerSec'), 2)}× nginx's (target ≥ 1.3×); ` +
      `the proxy sends ${num(median('proxy', 'upstreamPerSec') / median('proxy', 'callsPerSec'), 3)} ` +
      'upstream calls per call (nginx: 1).',
  );
  if (rows.some((r) => r.target === 'minimal batcher')) {
    const floor = median('minimal batcher', 'cpuPerCallUs');
    report.text(
      `The minimal batcher (node:http in, one undici Pool out, no validation, limits, metrics or logs: the ` +
        `floor for a Node batching proxy) reaches ` +
        `${num(median('minimal batcher', 'callsPerSec') / median('nginx', 'callsPerSec'), 2)}× nginx's calls/s ` +
        `at ${num(floor, 1)} µs CPU per call (${num(floor / median('nginx', 'cpuPerCallUs'), 1)}× nginx's); ` +
        `the proxy spends ${num(cpu - floor, 1)} µs per call above it.`,
    );
  }
  return {
    profile,
    nginxConf,
    cpuVsNginx: cpu / median('nginx', 'cpuPerCallUs'),
    callsVsNginx: median('proxy', 'callsPerSec') / median('nginx', 'callsPerSec'),
  };
}

/** The median of one column over a target's rounds: one disturbed run does not move it. */
export function medianOf(
  rows: readonly Row[],
  target: TargetName,
  k: 'callsPerSec' | 'cpuPerCallUs' | 'upstreamPerSec',
  where?: PlacementName,
): number {
  return percentile(
    rows
      .filter((r) => r.target === target && (where === undefined || r.placement === where))
      .map((r) => r[k]),
    50,
  );
}
