// Waves of calls for never-seen appIds with never-seen credentials, and the real process's RSS after
// each wave: the memory tests of SPEC §8c ("bounded by configuration, not by traffic").

import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { ProxyProcess } from '../harness/process.js';

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

/** Runs the waves one after the other; RSS (MB) after each. `check` sees each wave's statuses. */
export async function rssAfterWaves(
  proxy: ProxyProcess,
  o: Waves,
  check: (statuses: number[]) => void,
): Promise<number[]> {
  const pool = new Pool(proxy.url, { connections: o.concurrency });
  const pid = proxy.child.pid ?? 0;
  const samples: number[] = [];
  try {
    for (let n = 0; n < o.waves; n++) {
      check((await wave(pool, n, o)).sort());
      samples.push(Math.round(rssMb(pid)));
    }
  } finally {
    await pool.close();
  }
  return samples;
}
