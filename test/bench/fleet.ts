// Scenario 5 — fleet: three proxy replicas sharing one Redis. How many Redis commands each upstream
// batch call costs, from INFO commandstats (before/after). The limiter is one Lua script for every
// operation (acquire, settle, pause, peek), so commandstats sees them all as EVALSHA; a MONITOR
// connection tells them apart, and the replicas' own metrics split acquires into granted and denied.

import { Redis } from 'ioredis';
import type { ProxyProcess } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';
import { APP_ID, APPS, SECRET, startProxy } from './context.js';
import { closedLoop, httpSend, type LoadRun, openLoop, pool, putUser, sleep } from './load.js';
import { commandDelta, commandStats, monitor } from './redis-stats.js';
import { num, type Report } from './report.js';
import { delta, startUpstream } from './upstream.js';

export interface FleetOptions {
  replicas: number;
  warmMs: number;
  durationMs: number;
  /** Light regime: open-loop calls per second over all replicas, batch tokens plentiful. */
  lightRatePerSec: number;
  /** Paced regime: the batch limit (upstream and proxy), overloaded by closed-loop callers. */
  pacedBatchPerSec: number;
  pacedCallers: number;
}

interface Row {
  regime: string;
  batchCalls: number;
  singleCalls: number;
  /** INFO commandstats delta: everything Redis ran, script internals included. */
  commands: Record<string, number>;
  /** MONITOR: commands clients sent (round trips), the limiter script by operation. */
  client: Record<string, number>;
  granted: number;
  denied: number;
  upstream429: number;
  /** Round trips (client commands) per upstream batch call. */
  tripsPerBatch: number;
  opsPerBatch: number;
  /** Round trips per limiter decision: acquire script calls / (granted + denied) from the metrics. */
  tripsPerDecision: number;
}

async function decisions(proxies: ProxyProcess[]): Promise<{ granted: number; denied: number }> {
  let granted = 0;
  let denied = 0;
  const texts = await Promise.all(proxies.map((p) => fetch(`${p.adminUrl}/metrics`).then((r) => r.text())));
  for (const text of texts) {
    for (const m of text.matchAll(/^batch_proxy_limiter_decisions_total\{([^}]*)\} (\d+)/gm)) {
      const labels = m[1] ?? '';
      if (!labels.includes('bucket="batch"')) continue;
      if (labels.includes('result="granted"')) granted += Number(m[2]);
      else denied += Number(m[2]);
    }
  }
  return { granted, denied };
}

export async function fleet(report: Report, opts: FleetOptions): Promise<Row[]> {
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  const rows: Row[] = [];
  try {
    const regimes = [
      {
        name: `light: ${opts.lightRatePerSec} calls/s open loop, batch tokens plentiful`,
        limits: undefined,
        env: { BATCH_RATE_PER_SEC: '1000', BATCH_BURST: '1000' },
        load: (send: ReturnType<typeof httpSend>): LoadRun =>
          openLoop({ send, ratePerSec: opts.lightRatePerSec, durationMs: opts.warmMs + opts.durationMs }),
      },
      {
        name: `paced: batch limit ${opts.pacedBatchPerSec}/s burst 1, ${opts.pacedCallers} callers closed loop`,
        limits: { batch: { ratePerSec: opts.pacedBatchPerSec, burst: 1 } },
        env: { BATCH_RATE_PER_SEC: String(opts.pacedBatchPerSec), BATCH_BURST: '1' },
        load: (send: ReturnType<typeof httpSend>): LoadRun =>
          closedLoop({ send, callers: opts.pacedCallers }),
      },
    ];
    for (const regime of regimes) {
      await admin.flushall();
      const upstream = await startUpstream({
        apps: APPS,
        ...(regime.limits ? { limits: regime.limits } : {}),
        latencyMs: 5,
      });
      const proxies = await Promise.all(
        Array.from({ length: opts.replicas }, () =>
          startProxy({
            UPSTREAM_URL: upstream.url,
            REDIS_URL: redis.url,
            BATCH_WINDOW_MS: '10',
            SHUTDOWN_GRACE_MS: '300',
            ...regime.env,
          }),
        ),
      );
      const pools = proxies.map((p) => pool(p.url, 256));
      try {
        const run = regime.load(httpSend(pools, putUser(APP_ID, SECRET)));
        await sleep(opts.warmMs);
        const mon = await monitor(redis.port);
        // Every counter is read at both ends in the mirrored order, all within a few milliseconds.
        const [c0, d0, s0] = await Promise.all([
          commandStats(admin),
          decisions(proxies),
          upstream.snapshot(),
        ]);
        const m0 = { ...mon.client };
        await sleep(opts.durationMs);
        const [c1, d1, s1] = await Promise.all([
          commandStats(admin),
          decisions(proxies),
          upstream.snapshot(),
        ]);
        const m1 = { ...mon.client };
        await mon.stop();
        const client: Record<string, number> = {};
        for (const [k, v] of Object.entries(m1)) {
          const n = v - (m0[k] ?? 0);
          if (n > 0) client[k] = n;
        }
        const d = delta(s0, s1);
        rows.push({
          regime: regime.name,
          batchCalls: d.batchCalls,
          singleCalls: d.singleCalls,
          commands: commandDelta(c0, c1),
          client,
          tripsPerBatch: Object.values(client).reduce((a, n) => a + n, 0) / d.batchCalls,
          opsPerBatch: d.batchOps / d.batchAdmitted,
          tripsPerDecision:
            ((client['evalsha:acquire'] ?? 0) + (client['eval:acquire'] ?? 0)) /
            (d1.granted - d0.granted + d1.denied - d0.denied),
          granted: d1.granted - d0.granted,
          denied: d1.denied - d0.denied,
          upstream429: d.rejected429,
        });
        const stopped = run.stop(5_000);
        await Promise.all(proxies.map((p) => p.stop()));
        await stopped;
      } finally {
        await Promise.all(proxies.map((p) => p.stop('SIGKILL')));
        await Promise.all(pools.map((p) => p.destroy()));
        await upstream.close();
      }
    }
  } finally {
    admin.disconnect();
    await redis.stop();
  }

  report.table(
    [
      'regime',
      'upstream batch calls',
      'ops per batch',
      'Redis round trips',
      'round trips per batch call',
      'acquire (granted / denied)',
      'settle',
      'other round trips',
      'commands Redis ran (incl. inside the script)',
      'upstream 429s',
    ],
    rows.map((r) => {
      const trips = Object.values(r.client).reduce((a, n) => a + n, 0);
      const ran = Object.values(r.commands).reduce((a, n) => a + n, 0);
      const acquire = (r.client['evalsha:acquire'] ?? 0) + (r.client['eval:acquire'] ?? 0);
      const settle = (r.client['evalsha:settle'] ?? 0) + (r.client['eval:settle'] ?? 0);
      const other = Object.entries(r.client).filter(([k]) => !/:(acquire|settle)$/.test(k));
      // (INFO and MONITOR of the benchmark itself are left out of every count.)
      return [
        r.regime,
        r.batchCalls,
        num(r.opsPerBatch, 1),
        trips,
        num(r.tripsPerBatch, 2),
        `${acquire} (${r.granted} / ${r.denied})`,
        settle,
        other.map(([k, v]) => `${k} ${v}`).join(', ') || '-',
        `${ran} (${Object.entries(r.commands)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`,
        r.upstream429,
      ];
    }),
  );
  return rows;
}
