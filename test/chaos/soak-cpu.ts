// Where the soak's CPU goes: each process's user + system time from /proc/<pid>/stat (Linux), as a
// share of one core over the interval between two readings, and the machine's load average. Elsewhere
// (no /proc) every figure is NaN and the soak runs on.

import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SEC = 100;

/** CPU seconds (user + system) a process has used so far; NaN when it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name in parentheses (which may hold spaces): state is field 3, utime 14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
  } catch {
    return Number.NaN;
  }
}

/** The pid of the redis-server listening on `port` (its title names the port); undefined if none. */
export function redisPid(port: number): number | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      if (
        cmdline.startsWith('redis-server') &&
        (cmdline.includes(`:${port}`) || cmdline.includes(` ${port} `))
      )
        return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * Per-process CPU between successive `read()`s, in % of one core. A process resolved anew each time
 * (Redis after a restart): a new pid starts from its own total, counted from its start.
 */
export class CpuMeter {
  readonly #last = new Map<string, { pid: number; cpu: number; at: number }>();

  constructor(readonly processes: Record<string, () => number | undefined>) {
    this.read();
  }

  read(): Record<string, number> {
    const now = performance.now();
    const out: Record<string, number> = {};
    for (const [name, pidOf] of Object.entries(this.processes)) {
      const pid = pidOf();
      const cpu = pid === undefined ? Number.NaN : cpuSeconds(pid);
      const last = this.#last.get(name);
      const base = last && last.pid === pid ? last.cpu : 0;
      out[name] =
        last && Number.isFinite(cpu)
          ? Math.round(((cpu - base) / ((now - last.at) / 1000)) * 1000) / 10
          : Number.NaN;
      if (pid !== undefined && Number.isFinite(cpu)) this.#last.set(name, { pid, cpu, at: now });
    }
    return out;
  }
}

/** The 1-minute load average (0 where the platform has none). */
export const load1 = (): number => Math.round((loadavg()[0] ?? 0) * 100) / 100;
