// Waves of calls for never-seen appIds with never-seen credentials, and the real process's memory after
// each wave: the memory tests of SPEC §8c ("bounded by configuration, not by traffic").

import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { ProxyProcess } from '../harness/process.js';
import { connectInspector } from './inspector.js';

export interface Waves {
  waves: number;
  perWave: number;
  concurrency: number;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

const ROUTES = [
  (app: string) => ({ method: 'PUT' as const, path: `/v1/${app}/users/u1`, body: '{"name":"x"}' }),
  (app: string) => ({
    method: 'GET' as const,
    path: `/v1/${app}/users/u1`,
    extra: { 'x-batch-bypass': '1' },
  }),
  (app: string) => ({ method: 'POST' as const, path: `/v1/${app}/batch`, body: '[]' }),
];

async function wave(pool: Pool, n: number, o: Waves): Promise<number[]> {
  const statuses = new Set<number>();
  let next = 0;
  const worker = async () => {
    while (next < o.perWave) {
      const i = next++;
      const route = (ROUTES[i % ROUTES.length] as (typeof ROUTES)[number])(`mem-${n}-${i}`);
      const res = await pool.request({
        method: route.method,
        path: route.path,
        headers: {
          authorization: `Bearer tok-${n}-${i}`,
          'content-type': 'application/json',
          ...('extra' in route ? route.extra : {}),
        },
        ...('body' in route ? { body: route.body } : {}),
      });
      statuses.add(res.statusCode);
      await res.body.dump();
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return [...statuses];
}

export interface WaveSamples {
  /** RSS (MB) after each wave: what an operator sees, reported. */
  rss: number[];
  /** Live heap (MB) after a full GC after each wave: what the process keeps, asserted. */
  heap: number[];
}

/**
 * Runs the waves one after the other and samples memory after each. The proxy must have been started
 * with INSPECT_ARGS. `check` sees each wave's statuses.
 */
export async function memoryAfterWaves(
  proxy: ProxyProcess,
  o: Waves,
  check: (statuses: number[]) => void,
): Promise<WaveSamples> {
  const inspector = await connectInspector(proxy);
  const pool = new Pool(proxy.url, { connections: o.concurrency });
  const pid = proxy.child.pid ?? 0;
  const samples: WaveSamples = { rss: [], heap: [] };
  try {
    for (let n = 0; n < o.waves; n++) {
      check((await wave(pool, n, o)).sort());
      samples.heap.push(Math.round((await inspector.heapAfterGcMb()) * 10) / 10);
      samples.rss.push(Math.round(rssMb(pid)));
    }
  } finally {
    inspector.close();
    await pool.close();
  }
  return samples;
}

/** The samples as one line for an assertion message. */
export function describeSamples(s: WaveSamples, perWave: number): string {
  return `after each wave of ${perWave}: heap after GC ${s.heap.join(', ')} MB; RSS ${s.rss.join(', ')} MB`;
}
