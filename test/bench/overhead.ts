// Scenario 1 — overhead: open-loop load at a fixed rate; latency of calls made directly to the fake
// upstream against the same calls through the proxy. Both streams run at the same time (each at the
// full rate, interleaved by the clock), so both see the same machine: on a shared box the noise of
// other work lands on both sides of the subtraction instead of on one run. The upstream and the
// proxy's batch bucket are unlimited for practical purposes, so what remains is the window plus the
// proxy's own cost. The minimal batcher (minimal-batcher.ts: node:http in, one undici Pool out, nothing
// else) gets the same pass at each window: the floor any Node batching proxy meets on this machine.

import { startServerScript } from './bare.js';
import { APP_ID, APPS, SECRET, startProxy } from './context.js';
import {
  type Counts,
  httpSend,
  type LoadRun,
  openLoop,
  percentile,
  pool,
  putUser,
  type Send,
} from './load.js';
import { ms, num, type Report } from './report.js';
import { delta, startUpstream, type UpstreamProcess } from './upstream.js';

export interface OverheadOptions {
  ratePerSec: number;
  warmMs: number;
  durationMs: number;
  windowsMs: number[];
}

interface Stream {
  sorted: number[];
  counts: Counts;
  lagP99: number;
}

function stream(run: LoadRun, counts: Counts): Stream {
  return { sorted: run.latencies().sort((a, b) => a - b), counts, lagP99: run.sendLag().p99 };
}

export async function overhead(report: Report, opts: OverheadOptions): Promise<{ pass: boolean }> {
  const upstream = await startUpstream({ apps: APPS });
  const rows: (string | number)[][] = [];
  const added: (string | number)[][] = [];
  const where: (string | number)[][] = [];
  let pass = true;
  try {
    for (const [windowIndex, windowMs] of opts.windowsMs.entries()) {
      // Each target in its own pass beside its own direct stream: the proxy and the minimal batcher
      // (minimal-batcher.ts: the floor for any Node batching proxy on this machine) at the same window,
      // first one then the other from window to window (the second pass meets a warmer upstream). The
      // tables show the proxy first whatever the order.
      const order = ['proxy', 'minimal batcher'] as const;
      const blocks = new Map<(typeof order)[number], { rows: typeof rows; added: typeof added }>();
      for (const target of windowIndex % 2 === 0 ? order : [...order].reverse()) {
        const block = { rows: [] as typeof rows, added: [] as typeof added };
        blocks.set(target, block);
        const server =
          target === 'proxy'
            ? await startProxy({
                UPSTREAM_URL: upstream.url,
                BATCH_WINDOW_MS: String(windowMs),
                BATCH_RATE_PER_SEC: '1000',
                BATCH_BURST: '1000',
              })
            : await startServerScript('minimal-batcher.js', [upstream.url, String(windowMs)]);
        try {
          const m = await measurePair(upstream, server.url, opts);
          const through = target === 'proxy' ? 'through the proxy' : 'through the minimal batcher';
          block.rows.push(line(windowMs, 'direct to the fake upstream', m.direct, m.d.singleCalls, 1));
          block.rows.push(
            line(
              windowMs,
              through,
              m.proxied,
              m.d.batchCalls,
              m.d.batchAdmitted > 0 ? m.d.batchOps / m.d.batchAdmitted : Number.NaN,
            ),
          );
          const p50 = q(m.proxied, 50) - q(m.direct, 50);
          const p99 = q(m.proxied, 99) - q(m.direct, 99);
          const ok = p99 <= windowMs + 1 && m.proxied.counts.ok === m.proxied.counts.sent;
          if (target === 'proxy') pass &&= ok;
          block.added.push([
            `${windowMs} ms`,
            target,
            ms(p50),
            ms(p99),
            ms(p50 - windowMs),
            ms(p99 - windowMs),
            `≤ ${windowMs + 1} ms`,
            target === 'proxy' ? (ok ? 'met' : 'MISSED') : ok ? '(floor: met)' : '(floor: missed)',
          ]);
          if (target === 'proxy') {
            const split = (k: keyof Timing) => {
              const values = m.timings.map((t) => t[k]);
              return `${ms(percentile(values, 50))} / ${ms(percentile(values, 99))}`;
            };
            where.push([`${windowMs} ms`, split('queue'), split('upstream'), split('rest'), split('total')]);
          }
        } finally {
          await server.stop();
        }
      }
      for (const target of order) {
        rows.push(...(blocks.get(target)?.rows ?? []));
        added.push(...(blocks.get(target)?.added ?? []));
      }
    }
  } finally {
    await upstream.close();
  }

  report.table(
    [
      'window',
      'path',
      'calls',
      'non-2xx',
      'p50',
      'p90',
      'p99',
      'max',
      'upstream calls',
      'ops/upstream call',
      'send lag p99',
    ],
    rows,
  );
  report.table(
    [
      'window',
      'target',
      'added p50',
      'added p99',
      'p50 beyond the window',
      'p99 beyond the window',
      'target (added p99)',
      'result',
    ],
    added,
  );
  report.text(
    'Where the proxied calls spent their time, p50 / p99 of each part on its own, from the ' +
      "proxy's `Server-Timing`: queue (from the proxy having the whole request to its batch leaving: " +
      "the window), upstream (the batch call, as the proxy timed it), and the rest (the caller's " +
      'total minus both: reading and parsing the request, writing the answer, loopback, event-loop ' +
      'delays in the proxy and in the load generator).',
  );
  report.table(['window', 'queue', 'upstream', 'rest', 'total (caller)'], where);
  return { pass };
}

interface Pair {
  direct: Stream;
  proxied: Stream;
  d: ReturnType<typeof delta>;
  /** The proxied calls' Server-Timing (empty for a target that sends none). */
  timings: Timing[];
}

/** Two open-loop streams at once: straight to the upstream and through `url`; warm-up, then measured. */
async function measurePair(upstream: UpstreamProcess, url: string, opts: OverheadOptions): Promise<Pair> {
  const directPool = pool(upstream.url, 256);
  const proxyPool = pool(url, 256);
  try {
    await upstream.reset();
    // Distinct users for the two streams (odd and even numbers).
    const call = putUser(APP_ID, SECRET, 1_000_000);
    const direct = httpSend([directPool], (i) => call(2 * i));
    // The proxied stream also keeps each answer's Server-Timing, to show where its time went.
    let timings: Timing[] = [];
    const proxied: Send = async (i) => {
      const c = call(2 * i + 1);
      const t0 = performance.now();
      const res = await proxyPool.request({
        method: c.method,
        path: c.path,
        headers: c.headers,
        body: c.body ?? null,
      });
      await res.body.dump();
      const header = res.headers['server-timing'];
      if (header !== undefined) timings.push(timing(performance.now() - t0, header));
      return res.statusCode;
    };
    const both = (durationMs: number) => [
      openLoop({ send: direct, ratePerSec: opts.ratePerSec, durationMs }),
      openLoop({ send: proxied, ratePerSec: opts.ratePerSec, durationMs }),
    ];
    // Warm-up (JIT, connections), not recorded.
    await Promise.all(both(opts.warmMs).map((r) => r.stop()));
    timings = [];
    const before = await upstream.snapshot();
    const [dRun, pRun] = both(opts.durationMs);
    if (!dRun || !pRun) throw new Error('no load');
    const [dCounts, pCounts] = await Promise.all([dRun.stop(), pRun.stop()]);
    const d = delta(before, await upstream.snapshot());
    return { direct: stream(dRun, dCounts), proxied: stream(pRun, pCounts), d, timings };
  } finally {
    await directPool.close();
    await proxyPool.close();
  }
}

const q = (s: Stream, p: number) => percentile(s.sorted, p, true);

function line(windowMs: number, label: string, s: Stream, upstreamCalls: number, opsPerCall: number) {
  return [
    `${windowMs} ms`,
    label,
    s.counts.sent,
    s.counts.sent - s.counts.ok,
    ms(q(s, 50)),
    ms(q(s, 90)),
    ms(q(s, 99)),
    ms(s.sorted[s.sorted.length - 1] ?? Number.NaN),
    upstreamCalls,
    num(opsPerCall, 2),
    ms(s.lagP99),
  ];
}

interface Timing {
  total: number;
  queue: number;
  upstream: number;
  rest: number;
}

function timing(total: number, header: string | string[] | undefined): Timing {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const dur = (name: string) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(text)?.[1] ?? Number.NaN);
  const queue = dur('queue');
  const upstream = dur('upstream');
  return { total, queue, upstream, rest: total - queue - upstream };
}
