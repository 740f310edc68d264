// What share of a process's CPU time the kernel spent (stime against utime + stime, /proc/<pid>/stat),
// for capacity.ts: on loopback much of a proxy's cost per call is socket system calls, which no
// JavaScript change removes. A ratio of ticks, so it needs no clock-tick unit.

import { readFileSync } from 'node:fs';
import { childPids } from './proc.js';

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
  // Fields are counted after the command name's last ')': utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), sys: Number(fields[12]) };
}

/** The ticks of a process and its direct children (nginx: master and workers). */
export function treeCpuTicks(pid: number): Ticks {
  return [pid, ...childPids(pid)]
    .map(cpuTicks)
    .reduce((a, b) => ({ user: a.user + b.user, sys: a.sys + b.sys }));
}

/** The kernel's share of the CPU time spent between two readings (NaN when none was spent). */
export function kernelShare(from: Ticks, to: Ticks): number {
  const sys = to.sys - from.sys;
  return sys / (to.user - from.user + sys);
}
