// The soak (issue #34, item 4): two proxy replicas sharing Redis in front of the fake upstream, an
// open-loop load at a fixed rate with a new appId and a new credential (app token) every second,
// 20 % writes (POSTs that name themselves), a Redis restart every 10 minutes and an upstream 5xx
// burst every 7 minutes (both scaled with the duration). Sampled at a fixed interval: each replica's
// heap after a full GC (through its inspector: the proxy itself exposes no heap-after-GC figure;
// /metrics has nodejs_heap_size_used_bytes, which moves with garbage not yet collected), its RSS
// (/metrics, process_resident_memory_bytes), the p99 of the calls answered in the interval, and calls
// answered per second. Counted: lost (no HTTP answer), duplicated (the upstream ran a POST more
// often than it was sent) and transport errors by cause. `pnpm soak` (test/bench/soak.ts) runs it for
// an hour; test/chaos/soak.test.ts for two minutes.

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type FakeUpstream, signAppToken, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';
import { repoRoot } from '../harness/repo-root.js';
import { connectInspector, INSPECT_ARGS, type Inspector } from '../robustness/inspector.js';
import {
  agentFor,
  type CallRecord,
  countBy,
  executions,
  metricValue,
  opText,
  percentile,
  scrape,
  send,
} from './fleet-kit.js';

export interface SoakOptions {
  durationMs: number;
  ratePerSec: number;
  /** Default: the duration / 60 (a minute for an hour). */
  sampleEveryMs?: number;
  /** Default: the duration / 6 (10 minutes for an hour). */
  redisRestartEveryMs?: number;
  /** Default: the duration x 7 / 60 (7 minutes for an hour). */
  burstEveryMs?: number;
  /** How long a 5xx burst lasts. Default: the duration / 720 (5 s for an hour), at least 1 s. */
  burstMs?: number;
  /** Apps alive at once (a new one every second replaces the oldest). Default 10. */
  liveApps?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SoakSample {
  /** Seconds since the start. */
  atSec: number;
  heapAfterGcMb: number[];
  rssMb: number[];
  p99Ms: number;
  callsPerSec: number;
}

export interface SoakResult {
  options: Required<Omit<SoakOptions, 'log'>>;
  samples: SoakSample[];
  sent: number;
  answered: number;
  statuses: Record<string, number>;
  lost: number;
  transportErrors: Record<string, number>;
  duplicated: number;
  upstream429: number;
  redisRestarts: number;
  bursts: number;
  /** Calls still unanswered when the run ended (they are waited for: 0 unless one hangs). */
  unfinished: number;
}

const MAX_WAIT_MS = 10_000;
const CONVERSATIONS = 5;

export async function runSoak(input: SoakOptions): Promise<SoakResult> {
  const d = input.durationMs;
  const options = {
    durationMs: d,
    ratePerSec: input.ratePerSec,
    sampleEveryMs: input.sampleEveryMs ?? Math.max(1_000, d / 60),
    redisRestartEveryMs: input.redisRestartEveryMs ?? d / 6,
    burstEveryMs: input.burstEveryMs ?? (d * 7) / 60,
    burstMs: input.burstMs ?? Math.max(1_000, d / 720),
    liveApps: input.liveApps ?? 10,
  };
  const log = input.log ?? (() => {});
  const apps: Record<string, string> = {};
  const upstream: FakeUpstream = await startFakeUpstream({ apps, latencyMs: () => 2 + Math.random() * 8 });
  const redis: RedisProcess = await startRedis();
  const replicas: Array<{ name: string; proxy: ProxyProcess; inspector: Inspector }> = [];
  const live: Array<{ app: string; authorization: string }> = [];
  let appSeq = 0;
  const newApp = async () => {
    const app = `soak-${appSeq++}`;
    const secret = `sk_${app}`;
    apps[app] = secret;
    for (let c = 0; c < CONVERSATIONS; c++) {
      // Seeded at the fake directly, which a 5xx burst refuses too: again until it takes.
      for (let attempt = 0; attempt < 100; attempt++) {
        const res = await fetch(`${upstream.url}/v1/${app}/conversations/c-${c}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
          body: '{}',
        });
        await res.arrayBuffer();
        if (res.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return { app, secret };
  };
  const secrets: Array<{ app: string; secret: string }> = [];
  /** Every second: a new app replaces the oldest, and every live app gets a new credential. */
  const rotate = async () => {
    secrets.push(await newApp());
    while (secrets.length > options.liveApps) secrets.shift();
    live.length = 0;
    for (const s of secrets) {
      live.push({
        app: s.app,
        authorization: `Bearer ${signAppToken(s.app, s.secret, { expiresInSec: 600, claims: { rot: appSeq } })}`,
      });
    }
  };
  for (let i = 0; i < options.liveApps; i++) await rotate();

  try {
    for (const name of ['A', 'B']) {
      const proxy = await startProxyProcess(
        {
          UPSTREAM_URL: upstream.url,
          REDIS_URL: redis.url,
          LOG_LEVEL: 'error',
          ACCESS_LOG: 'errors',
          BATCH_RATE_PER_SEC: '100',
          BATCH_BURST: '100',
          MAX_WAIT_MS: String(MAX_WAIT_MS),
          UPSTREAM_TIMEOUT_MS: '2000',
        },
        // The entry by the repository root: this module also runs compiled from test/bench/dist.
        { nodeArgs: INSPECT_ARGS, entry: join(repoRoot(), 'apps/proxy/dist/main.js'), killAfterMs: 10_000 },
      );
      replicas.push({ name, proxy, inspector: await connectInspector(proxy) });
    }
    const targets = replicas.map((r) => ({
      name: r.name,
      proxy: r.proxy,
      agent: agentFor({ connections: 512 }),
    }));

    const records: CallRecord[] = [];
    const pending = new Set<Promise<void>>();
    const postsSent = new Map<string, number>();
    let sent = 0;
    const samples: SoakSample[] = [];
    let windowStart = 0;
    let windowLatencies: number[] = [];
    let windowAnswered = 0;
    let redisRestarts = 0;
    let bursts = 0;
    const t0 = performance.now();
    const elapsed = () => performance.now() - t0;

    const fire = () => {
      const n = sent++;
      const target = targets[n % targets.length];
      const caller = live[n % live.length];
      if (!target || !caller) return;
      const id = `s${n}`;
      const write = n % 5 === 0;
      if (write) postsSent.set(id, (postsSent.get(id) ?? 0) + 1);
      const p = send({
        replica: target,
        app: caller.app,
        authorization: caller.authorization,
        method: write ? 'POST' : 'GET',
        path: write
          ? `/conversations/c-${n % CONVERSATIONS}/messages`
          : `/conversations/c-${(n >> 1) % CONVERSATIONS}`,
        ...(write ? { body: [{ text: opText(id), type: 'SystemMessage' }] } : {}),
        id,
        timeoutMs: MAX_WAIT_MS + 20_000,
      }).then((r) => {
        records.push(r);
        if (r.status !== 0) {
          windowAnswered++;
          windowLatencies.push(r.doneAt - r.sentAt);
        }
        pending.delete(p);
      });
      pending.add(p);
    };

    const sample = async () => {
      const now = elapsed();
      const heaps = await Promise.all(replicas.map((r) => r.inspector.heapAfterGcMb()));
      const texts = await Promise.all(replicas.map((r) => scrape(r.proxy)));
      const s: SoakSample = {
        atSec: Math.round(now / 100) / 10,
        heapAfterGcMb: heaps.map((h) => Math.round(h * 10) / 10),
        rssMb: texts.map(
          (t) => Math.round((metricValue(t, 'process_resident_memory_bytes') / 2 ** 20) * 10) / 10,
        ),
        p99Ms: Math.round(percentile(windowLatencies, 99)),
        callsPerSec: Math.round((windowAnswered / ((now - windowStart) / 1000)) * 10) / 10,
      };
      samples.push(s);
      log(
        `${s.atSec} s: heap ${s.heapAfterGcMb.join('/')} MB, RSS ${s.rssMb.join('/')} MB, p99 ${s.p99Ms} ms, ` +
          `${s.callsPerSec} calls/s; in flight ${pending.size}`,
      );
      windowStart = now;
      windowLatencies = [];
      windowAnswered = 0;
    };

    // The schedule: every 10 ms, the calls due by then (open loop: a slow proxy does not slow it).
    let nextSample = options.sampleEveryMs;
    let nextRotate = 1_000;
    let nextRestart = options.redisRestartEveryMs;
    let nextBurst = options.burstEveryMs;
    let burstEnds = Number.POSITIVE_INFINITY;
    const chores: Promise<unknown>[] = [];
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = elapsed();
        const due = Math.min(options.durationMs, now) * (options.ratePerSec / 1000);
        while (sent < due) fire();
        if (now >= nextRotate) {
          nextRotate += 1_000;
          chores.push(rotate());
        }
        if (now >= nextRestart && now < options.durationMs) {
          nextRestart += options.redisRestartEveryMs;
          redisRestarts++;
          log(`${Math.round(now / 1000)} s: Redis restart`);
          chores.push(redis.restart());
        }
        if (now >= nextBurst && now < options.durationMs) {
          nextBurst += options.burstEveryMs;
          bursts++;
          log(`${Math.round(now / 1000)} s: upstream 5xx burst for ${options.burstMs} ms`);
          upstream.faults.always = { status: 503, on: 'any' };
          burstEnds = now + options.burstMs;
        }
        if (now >= burstEnds) {
          upstream.faults.always = undefined;
          burstEnds = Number.POSITIVE_INFINITY;
        }
        if (now >= nextSample) {
          nextSample += options.sampleEveryMs;
          chores.push(sample());
        }
        if (now >= options.durationMs) {
          clearInterval(tick);
          resolve();
        }
      }, 10);
    });
    upstream.faults.always = undefined;
    await Promise.all(chores);
    // Every call sent gets its answer or its error (the client's own bound is MAX_WAIT_MS + 20 s).
    const unfinished = pending.size;
    await Promise.all(pending);
    await Promise.all(targets.map((t) => t.agent.close()));

    const runs = executions(upstream);
    let duplicated = 0;
    for (const [id, n] of runs) if (n > (postsSent.get(id) ?? 0)) duplicated++;
    const failed = records.filter((r) => r.status === 0);
    return {
      options,
      samples,
      sent,
      answered: records.length - failed.length,
      statuses: countBy(
        records.filter((r) => r.status !== 0),
        (r) => `${r.status}${r.code ? ` ${r.code}` : ''}`,
      ),
      lost: failed.length,
      transportErrors: countBy(failed, (r) => r.cause),
      duplicated,
      upstream429: upstream.stats.rejected429.batch + upstream.stats.rejected429.rest,
      redisRestarts,
      bursts,
      unfinished,
    };
  } finally {
    for (const r of replicas) r.inspector.close();
    await Promise.all(replicas.map((r) => r.proxy.stop()));
    await redis.stop();
    await upstream.close();
  }
}

/** Least-squares slope of y over x (per unit of x); NaN with fewer than two points. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** The four series as one SVG: four panels, a polyline per replica (heap, RSS) or one (p99, calls/s). */
export function soakSvg(result: SoakResult): string {
  const W = 720;
  const H = 160;
  const PAD = { l: 56, r: 12, t: 22, b: 22 };
  const xs = result.samples.map((s) => s.atSec);
  const xMax = Math.max(1, ...xs);
  const panels: Array<{ title: string; unit: string; lines: number[][] }> = [
    {
      title: 'heap after GC',
      unit: 'MB',
      lines: [0, 1].map((i) => result.samples.map((s) => s.heapAfterGcMb[i] ?? 0)),
    },
    { title: 'RSS', unit: 'MB', lines: [0, 1].map((i) => result.samples.map((s) => s.rssMb[i] ?? 0)) },
    {
      title: 'p99 latency',
      unit: 'ms',
      lines: [result.samples.map((s) => (Number.isFinite(s.p99Ms) ? s.p99Ms : 0))],
    },
    { title: 'calls answered', unit: '/s', lines: [result.samples.map((s) => s.callsPerSec)] },
  ];
  const colors = ['#1f77b4', '#d62728'];
  const parts: string[] = [];
  panels.forEach((panel, p) => {
    const top = p * H;
    const yMax = Math.max(1, ...panel.lines.flat()) * 1.1;
    const x = (v: number) => PAD.l + (v / xMax) * (W - PAD.l - PAD.r);
    const y = (v: number) => top + H - PAD.b - (v / yMax) * (H - PAD.t - PAD.b);
    parts.push(
      `<text x="${PAD.l}" y="${top + 15}" font-size="12">${panel.title} (${panel.unit})${panel.lines.length > 1 ? ' — replica A blue, B red' : ''}</text>`,
      `<line x1="${PAD.l}" y1="${y(0)}" x2="${W - PAD.r}" y2="${y(0)}" stroke="#999"/>`,
      `<line x1="${PAD.l}" y1="${top + PAD.t}" x2="${PAD.l}" y2="${y(0)}" stroke="#999"/>`,
      `<text x="${PAD.l - 4}" y="${y(0)}" font-size="10" text-anchor="end">0</text>`,
      `<text x="${PAD.l - 4}" y="${top + PAD.t + 8}" font-size="10" text-anchor="end">${Math.round(yMax)}</text>`,
      `<text x="${W - PAD.r}" y="${y(0) + 14}" font-size="10" text-anchor="end">${Math.round(xMax)} s</text>`,
    );
    panel.lines.forEach((line, i) => {
      const points = line.map((v, k) => `${x(xs[k] ?? 0).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      parts.push(
        `<polyline fill="none" stroke="${colors[i] ?? '#333'}" stroke-width="1.5" points="${points}"/>`,
      );
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H * panels.length}" font-family="sans-serif">\n${parts.join('\n')}\n</svg>\n`;
}

/** The markdown report: the run, the totals, the trend and a row per sample. */
export function soakMarkdown(result: SoakResult, svgName: string): string {
  const o = result.options;
  const after = result.samples.filter((s) => s.atSec >= o.durationMs / 1000 / 12);
  const heapSlope = [0, 1].map((i) =>
    slope(
      after.map((s) => s.atSec / 60),
      after.map((s) => s.heapAfterGcMb[i] ?? 0),
    ),
  );
  const p99Slope = slope(
    after.map((s) => s.atSec / 60),
    after.map((s) => s.p99Ms),
  );
  const rows = result.samples.map(
    (s) =>
      `| ${s.atSec} | ${s.heapAfterGcMb.join(' / ')} | ${s.rssMb.join(' / ')} | ${s.p99Ms} | ${s.callsPerSec} |`,
  );
  return [
    '# Soak',
    '',
    `Generated by \`pnpm soak\` (test/bench/soak.ts, test/chaos/soak-engine.ts). Two replicas and Redis,`,
    `${o.ratePerSec} calls/s open loop for ${Math.round(o.durationMs / 1000)} s, 20 % writes, a new appId and a new`,
    `credential every second, a Redis restart every ${Math.round(o.redisRestartEveryMs / 1000)} s and an upstream 5xx burst`,
    `(${Math.round(o.burstMs / 1000)} s) every ${Math.round(o.burstEveryMs / 1000)} s; sampled every ${Math.round(o.sampleEveryMs / 1000)} s.`,
    '',
    `![soak series](${svgName})`,
    '',
    `- sent ${result.sent}, answered ${result.answered}, **lost ${result.lost}** (no HTTP answer), **duplicated ${result.duplicated}**`,
    `- transport errors by cause: ${JSON.stringify(result.transportErrors)}`,
    `- answers: ${JSON.stringify(result.statuses)}`,
    `- upstream 429s ${result.upstream429}; Redis restarts ${result.redisRestarts}; 5xx bursts ${result.bursts}`,
    `- heap after GC slope after the first twelfth: ${heapSlope.map((x) => x.toFixed(3)).join(' / ')} MB/min (A / B); p99 slope ${p99Slope.toFixed(2)} ms/min`,
    '',
    '| s | heap after GC MB (A / B) | RSS MB (A / B) | p99 ms | calls/s |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
