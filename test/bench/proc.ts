// What the benchmarks read from /proc (Linux only): CPU time and resident memory of a process, and the
// machine they ran on.

import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';

let clockTicks: number | undefined;

/** Clock ticks per second, the unit of utime and stime in /proc/<pid>/stat (100 on Linux nearly always). */
function ticksPerSec(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface Ticks {
  user: number;
  sys: number;
}

/** utime and stime of one process so far, in clock ticks (zeros when it is gone). */
export function cpuTicks(pid: number): Ticks {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { user: 0, sys: 0 };
  }
  // The command name may contain spaces and parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the name.
  return { user: Number(fields[11]), sys: Number(fields[12]) };
}

/** User + system time of a tick reading, in milliseconds. */
export function ticksToMs(t: Ticks): number {
  return ((t.user + t.sys) * 1000) / ticksPerSec();
}

/** User + system CPU time of one process so far, in milliseconds (0 when it is gone). */
export function cpuMs(pid: number): number {
  return ticksToMs(cpuTicks(pid));
}

/**
 * The kernel's share of the CPU time spent between two readings (NaN when none was spent): on
 * loopback much of a proxy's cost per call is socket system calls, which no JavaScript change removes.
 */
export function kernelShare(from: Ticks, to: Ticks): number {
  const sys = to.sys - from.sys;
  return sys / (to.user - from.user + sys);
}

/** The direct children of a process (e.g. nginx workers of its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** The ticks of a process and its direct children (nginx: master and workers). */
export function treeCpuTicks(pid: number): Ticks {
  return [pid, ...childPids(pid)]
    .map(cpuTicks)
    .reduce((a, b) => ({ user: a.user + b.user, sys: a.sys + b.sys }));
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  nginx: string;
  redis: string;
}

function version(bin: string, args: string[], pattern: RegExp): string {
  // nginx -v prints to stderr, redis-server --version to stdout.
  const out = spawnSync(bin, args, { encoding: 'utf8' });
  if (out.error) return 'not found';
  return pattern.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown';
}

export function machine(): Machine {
  let cpuModel = 'unknown';
  try {
    cpuModel =
      /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  return {
    cpus: availableParallelism(),
    cpuModel,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    nginx: version('nginx', ['-v'], /nginx\/(\S+)/),
    redis: version('redis-server', ['--version'], /v=(\S+)/),
  };
}

/** Where the capacity scenario runs its processes: as the scheduler likes, or each on a given CPU. */
export interface Placement {
  /** The CPU for the load generator and the fake upstream, and the one for the target under test. */
  readonly loadCpu: string;
  readonly targetCpu: string;
  /** Binds `pids` (every thread, and their children's) to `cpu` (a `taskset` list such as "1"). */
  bind(pids: readonly number[], cpu: string): void;
  /** Gives `pids` (and their children) every CPU this process started with. */
  release(pids: readonly number[]): void;
}

function affinityOf(pid: number): string | undefined {
  const r = spawnSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8' });
  return r.status === 0 ? /:\s*(\S+)\s*$/.exec(r.stdout)?.[1] : undefined;
}

/**
 * Pinning with `taskset`, or undefined when this machine cannot (fewer than two CPUs in this process's
 * affinity, or no taskset). Call it before any pinning: it reads this process's affinity.
 */
export function placement(): Placement | undefined {
  const all = affinityOf(process.pid);
  if (all === undefined) return undefined;
  // "0-3,6" → 0 1 2 3 6: the first two CPUs this process may use.
  const cpus = all.split(',').flatMap((part) => {
    const [from = Number.NaN, to = from] = part.split('-').map(Number);
    return Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => from + k);
  });
  const [loadCpu, targetCpu] = cpus;
  if (loadCpu === undefined || targetCpu === undefined) return undefined;
  const set = (pids: readonly number[], cpu: string) => {
    for (const pid of pids.flatMap((p) => [p, ...childPids(p)])) {
      const r = spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`taskset -c ${cpu} ${pid} failed`);
    }
  };
  return {
    loadCpu: String(loadCpu),
    targetCpu: String(targetCpu),
    bind: set,
    release: (pids) => set(pids, all),
  };
}
