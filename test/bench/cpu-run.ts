// One open-loop run at a fixed rate against one target, measuring the CPU time of its process per call
// answered: the unit of bench:guard and of the access-log comparison. A fixed rate (not a closed loop)
// gives every target the same number of calls per event-loop turn, whatever the machine's speed.

import { APP_ID, SECRET } from './context.js';
import { httpSend, openLoop, pool, putUser, sleep } from './load.js';
import { cpuMs } from './proc.js';

export interface CpuRunOptions {
  readonly ratePerSec: number;
  readonly warmMs: number;
  readonly measureMs: number;
}

export interface CpuRun {
  readonly cpuPerCallUs: number;
  /** Calls that did not get a 2xx (or no answer at all). */
  readonly failed: number;
}

export async function cpuPerCall(url: string, pid: number, opts: CpuRunOptions): Promise<CpuRun> {
  const p = pool(url, 256);
  try {
    const load = openLoop({
      send: httpSend([p], putUser(APP_ID, SECRET)),
      ratePerSec: opts.ratePerSec,
      durationMs: opts.warmMs + opts.measureMs,
    });
    await sleep(opts.warmMs);
    const [c0, cpu0] = [load.counts(), cpuMs(pid)];
    await sleep(opts.measureMs);
    const [c1, cpu1] = [load.counts(), cpuMs(pid)];
    const end = await load.stop(10_000);
    const calls = c1.completed - c0.completed;
    return { cpuPerCallUs: ((cpu1 - cpu0) * 1000) / calls, failed: end.completed - end.ok + end.errors };
  } finally {
    await p.close();
  }
}

export interface CpuTarget {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
}

/**
 * CPU per call of the bare floor and each target, in alternating rounds after one unrecorded pass
 * (every process past start-up and JIT warm-up before anything counts): µs samples by name, the
 * floor under `bare node`, and the calls that failed.
 */
export async function alternateRounds(
  bare: { url: string; pid: number },
  targets: readonly CpuTarget[],
  rounds: number,
  opts: CpuRunOptions,
): Promise<{ samples: Map<string, number[]>; failed: number }> {
  const samples = new Map<string, number[]>();
  const add = (name: string, us: number) => samples.set(name, [...(samples.get(name) ?? []), us]);
  let failed = 0;
  await cpuPerCall(bare.url, bare.pid, opts);
  for (const t of targets) await cpuPerCall(t.url, t.pid, opts);
  for (let round = 0; round < rounds; round++) {
    add('bare node', (await cpuPerCall(bare.url, bare.pid, opts)).cpuPerCallUs);
    for (const t of targets) {
      const r = await cpuPerCall(t.url, t.pid, opts);
      failed += r.failed;
      add(t.name, r.cpuPerCallUs);
    }
  }
  return { samples, failed };
}
