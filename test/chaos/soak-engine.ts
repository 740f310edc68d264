// The soak (issue #34, item 4): two proxy replicas sharing Redis in front of the fake upstream, an
// open-loop load at a fixed rate with a new appId and a new credential (app token) every second,
// 20 % writes (POSTs that name themselves), a Redis restart every 10 minutes and an upstream 5xx
// burst every 7 minutes (both scaled with the duration). `pnpm soak` (test/bench/soak.ts) runs it for
// an hour; test/chaos/soak.test.ts for two minutes.
//
// Three kinds of process, so that none of them slows the measurement of another: this one only sends
// calls and reads answers (undici, one pool per replica); the fake upstream runs in a child of its own
// (soak-upstream.ts, driven over IPC: apps, bursts, counters, the duplicate count); the replicas are
// the built proxy. Sampled at a fixed interval: each replica's heap after its last full GC (its own
// /metrics gauge nodejs_heap_used_after_major_gc_bytes, and how many full GCs ran in the interval) and
// RSS (process_resident_memory_bytes), the p99 of the calls answered in the interval, calls answered
// and sent per second, calls in flight, this process's event-loop delay, and each process's CPU (/proc)
// with the machine's load average. Counted: lost (no HTTP answer), duplicated (the upstream ran a POST
// more often than it was sent: counted by the fake, per call), transport errors by cause.

import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { signAppToken } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';
import { repoRoot } from '../harness/repo-root.js';
import { agentFor, type CallRecord, metricValue, opText, percentile, scrape, send } from './fleet-kit.js';
import { CpuMeter, load1, redisPid } from './soak-cpu.js';
import { CONVERSATIONS, callId, isWrite, type SoakUpstreamStats } from './soak-protocol.js';
import { type SoakUpstream, startSoakUpstream } from './soak-upstream-process.js';

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
  /** Each replica's heap right after its last full GC (0 before its first). */
  heapAfterGcMb: number[];
  /** Full (mark-compact) GCs each replica ran in the interval. */
  majorGcs: number[];
  rssMb: number[];
  p50Ms: number;
  p99Ms: number;
  /** Calls answered (any HTTP status) per second over the interval. */
  callsPerSec: number;
  /** Calls sent per second over the interval (the schedule's rate when the client keeps up). */
  sentPerSec: number;
  /** Calls in flight when sampled, and the most at any send in the interval. */
  inFlight: number;
  inFlightMax: number;
  /** This process's event-loop delay, p99 over the interval (ms). */
  loopDelayP99Ms: number;
  /** Each process's CPU over the interval, % of one core: client, upstream, A, B, redis. */
  cpu: Record<string, number>;
  /** The machine's 1-minute load average. */
  load1: number;
  /** The fake upstream's heap and RSS (MB): it keeps every message posted. */
  upstreamHeapMb: number;
  upstreamRssMb: number;
}

export interface SoakResult {
  options: Required<Omit<SoakOptions, 'log'>>;
  samples: SoakSample[];
  /** Wall time of the load (s): the schedule, then the wait for the last answers. */
  elapsedSec: number;
  sent: number;
  writesSent: number;
  answered: number;
  statuses: Record<string, number>;
  lost: number;
  transportErrors: Record<string, number>;
  /** Calls whose POST the upstream ran more often than it was sent. */
  duplicated: number;
  /** POSTs sent that the upstream ran (once). */
  writesRun: number;
  /** POSTs the upstream ran that name no soak call (0 unless something is wrong with the soak). */
  foreign: number;
  upstream429: number;
  /** Calls the 5xx bursts answered 503 at the upstream. */
  upstreamFaults: number;
  /** Batch calls that reached the fake, those it ran, and the ops they carried. */
  upstreamBatchCalls: number;
  upstreamBatchesRun: number;
  /** Plain (unbatched) calls that reached the fake: a flush of one op may leave as one. */
  upstreamSingleCalls: number;
  upstreamBatchOps: number;
  redisRestarts: number;
  bursts: number;
  /** When each Redis restart and 5xx burst began (s since the start). */
  events: Array<{ atSec: number; kind: 'redis restart' | '5xx burst' }>;
  /** Calls still unanswered when the schedule ended (then waited for). */
  unfinished: number;
  inFlightMax: number;
  /** The soak's own chores that failed (seeding an app, a Redis restart, a sample...): none, or the run is suspect. */
  choreFailures: string[];
}

const MAX_WAIT_MS = 10_000;
const round1 = (x: number) => Math.round(x * 10) / 10;

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
  const upstream: SoakUpstream = await startSoakUpstream({ latencyMs: [2, 10] });
  let redis: RedisProcess | undefined;
  const replicas: Array<{ name: string; proxy: ProxyProcess }> = [];
  try {
    redis = await startRedis();
    const redisPort = redis.port;
    const live: Array<{ app: string; authorization: string }> = [];
    const secrets: Array<{ app: string; secret: string }> = [];
    let appSeq = 0;
    /** Every second: a new app (seeded at the fake) replaces the oldest, and every live app gets a new credential. */
    const rotate = async () => {
      const app = `soak-${appSeq++}`;
      const secret = `sk_${app}`;
      await upstream.register(app, secret);
      secrets.push({ app, secret });
      while (secrets.length > options.liveApps) secrets.shift();
      const fresh = secrets.map((s) => ({
        app: s.app,
        authorization: `Bearer ${signAppToken(s.app, s.secret, { expiresInSec: 600, claims: { rot: appSeq } })}`,
      }));
      live.splice(0, live.length, ...fresh);
    };
    for (let i = 0; i < options.liveApps; i++) await rotate();

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
        { entry: join(repoRoot(), 'apps/proxy/dist/main.js'), killAfterMs: 10_000 },
      );
      replicas.push({ name, proxy });
    }
    const targets = replicas.map((r) => ({
      name: r.name,
      proxy: r.proxy,
      agent: agentFor({ connections: 512 }),
    }));

    let sent = 0;
    let writesSent = 0;
    let answered = 0;
    let lost = 0;
    let inFlight = 0;
    let inFlightMax = 0;
    let windowInFlightMax = 0;
    const statuses: Record<string, number> = {};
    const transportErrors: Record<string, number> = {};
    const pending = new Set<Promise<void>>();
    const samples: SoakSample[] = [];
    const events: SoakResult['events'] = [];
    let windowStart = 0;
    let windowSent = 0;
    let windowLatencies: number[] = [];
    let windowAnswered = 0;
    let redisRestarts = 0;
    let bursts = 0;
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const cpu = new CpuMeter({
      client: () => process.pid,
      upstream: () => upstream.pid,
      A: () => replicas[0]?.proxy.child.pid,
      B: () => replicas[1]?.proxy.child.pid,
      redis: () => redisPid(redisPort),
    });
    let lastGcCounts = await Promise.all(replicas.map(async (r) => majorGcCount(await scrape(r.proxy))));
    const t0 = performance.now();
    const elapsed = () => performance.now() - t0;

    const settle = (r: CallRecord) => {
      inFlight--;
      if (r.status === 0) {
        lost++;
        const cause = r.cause ?? 'unknown';
        transportErrors[cause] = (transportErrors[cause] ?? 0) + 1;
        return;
      }
      answered++;
      const key = `${r.status}${r.code ? ` ${r.code}` : ''}`;
      statuses[key] = (statuses[key] ?? 0) + 1;
      windowAnswered++;
      windowLatencies.push(r.doneAt - r.sentAt);
    };

    const fire = () => {
      const n = sent;
      const target = targets[n % targets.length];
      const caller = live[n % live.length];
      if (!target || !caller) return;
      sent++;
      windowSent++;
      const write = isWrite(n);
      if (write) writesSent++;
      const id = callId(n);
      inFlight++;
      if (inFlight > windowInFlightMax) windowInFlightMax = inFlight;
      if (inFlight > inFlightMax) inFlightMax = inFlight;
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
        settle(r);
        pending.delete(p);
      });
      pending.add(p);
    };

    const sample = async () => {
      const now = elapsed();
      // CPU first, synchronously: before a Redis restart due in the same tick stops the old server.
      const cpuShares = cpu.read();
      const [texts, up] = await Promise.all([
        Promise.all(replicas.map((r) => scrape(r.proxy))),
        upstream.stats(),
      ]);
      const gcCounts = texts.map(majorGcCount);
      const seconds = (now - windowStart) / 1000;
      const s: SoakSample = {
        atSec: round1(now / 1000),
        heapAfterGcMb: texts.map((t) =>
          round1(metricValue(t, 'nodejs_heap_used_after_major_gc_bytes') / 2 ** 20),
        ),
        majorGcs: gcCounts.map((c, i) => c - (lastGcCounts[i] ?? 0)),
        rssMb: texts.map((t) => round1(metricValue(t, 'process_resident_memory_bytes') / 2 ** 20)),
        p50Ms: Math.round(percentile(windowLatencies, 50)),
        p99Ms: Math.round(percentile(windowLatencies, 99)),
        callsPerSec: round1(windowAnswered / seconds),
        sentPerSec: round1(windowSent / seconds),
        inFlight,
        inFlightMax: windowInFlightMax,
        loopDelayP99Ms: round1(loopDelay.percentile(99) / 1e6),
        cpu: cpuShares,
        load1: load1(),
        upstreamHeapMb: Math.round(up.heapUsedMb),
        upstreamRssMb: Math.round(up.rssMb),
      };
      lastGcCounts = gcCounts;
      loopDelay.reset();
      samples.push(s);
      log(
        `${s.atSec} s: heap ${s.heapAfterGcMb.join('/')} MB (${s.majorGcs.join('/')} full GCs), RSS ${s.rssMb.join('/')} MB, ` +
          `p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, answered ${s.callsPerSec}/s, sent ${s.sentPerSec}/s, ` +
          `in flight ${s.inFlight} (max ${s.inFlightMax}), client loop p99 ${s.loopDelayP99Ms} ms, ` +
          `CPU % ${Object.entries(s.cpu)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}, load ${s.load1}, upstream heap ${s.upstreamHeapMb} MB; ` +
          `so far sent ${sent}, lost ${lost}; upstream ${up.batchCalls} batch + ${up.singleCalls} single calls, ` +
          `${up.faultsApplied} answered 503 by bursts`,
      );
      windowStart = now;
      windowSent = 0;
      windowLatencies = [];
      windowAnswered = 0;
      windowInFlightMax = inFlight;
    };

    // The schedule: every 10 ms, the calls due by then (open loop: a slow proxy does not slow it).
    let nextSample = options.sampleEveryMs;
    let nextRotate = 1_000;
    let nextRestart = options.redisRestartEveryMs;
    let nextBurst = options.burstEveryMs;
    let burstEnds = Number.POSITIVE_INFINITY;
    const chores = new Set<Promise<unknown>>();
    const chore = (work: () => Promise<unknown>) => {
      const p: Promise<unknown> = work().finally(() => chores.delete(p));
      chores.add(p);
    };
    const failures: string[] = [];
    const guarded = (what: string, work: () => Promise<unknown>) => () =>
      work().catch((error: unknown) => {
        failures.push(`${round1(elapsed() / 1000)} s, ${what}: ${String(error)}`);
        log(`${what} failed: ${String(error)}`);
      });
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = elapsed();
        const due = Math.min(options.durationMs, now) * (options.ratePerSec / 1000);
        while (sent < due) fire();
        if (now >= nextRotate) {
          nextRotate += 1_000;
          chore(guarded('rotating apps', rotate));
        }
        if (now >= nextSample) {
          nextSample += options.sampleEveryMs;
          chore(guarded('sampling', sample));
        }
        if (now >= nextRestart && now < options.durationMs) {
          nextRestart += options.redisRestartEveryMs;
          redisRestarts++;
          events.push({ atSec: round1(now / 1000), kind: 'redis restart' });
          log(`${Math.round(now / 1000)} s: Redis restart`);
          chore(guarded('restarting Redis', () => (redis as RedisProcess).restart()));
        }
        if (now >= nextBurst && now < options.durationMs) {
          nextBurst += options.burstEveryMs;
          bursts++;
          events.push({ atSec: round1(now / 1000), kind: '5xx burst' });
          log(`${Math.round(now / 1000)} s: upstream 5xx burst for ${options.burstMs} ms`);
          chore(guarded('starting a burst', () => upstream.burst(true)));
          burstEnds = now + options.burstMs;
        }
        if (now >= burstEnds) {
          burstEnds = Number.POSITIVE_INFINITY;
          chore(guarded('ending a burst', () => upstream.burst(false)));
        }
        if (now >= options.durationMs) {
          clearInterval(tick);
          resolve();
        }
      }, 10);
    });
    await upstream.burst(false);
    await Promise.all([...chores]);
    // Every call sent gets its answer or its error (the client's own bound is MAX_WAIT_MS + 20 s).
    const unfinished = pending.size;
    await Promise.all([...pending]);
    const elapsedSec = round1(elapsed() / 1000);
    loopDelay.disable();
    await Promise.all(targets.map((t) => t.agent.close()));

    const verdict = await upstream.verdict(sent);
    const up: SoakUpstreamStats = await upstream.stats();
    if (verdict.seedRetries > 0) log(`seeding retried ${verdict.seedRetries} times through bursts`);
    return {
      options,
      samples,
      elapsedSec,
      sent,
      writesSent,
      answered,
      statuses: Object.fromEntries(Object.entries(statuses).sort(([a], [b]) => a.localeCompare(b))),
      lost,
      transportErrors: Object.fromEntries(
        Object.entries(transportErrors).sort(([a], [b]) => a.localeCompare(b)),
      ),
      duplicated: verdict.duplicated,
      writesRun: verdict.writesRun,
      foreign: verdict.foreign,
      upstream429: up.rejected429,
      upstreamFaults: up.faultsApplied,
      upstreamBatchCalls: up.batchCalls,
      upstreamBatchesRun: up.batchesRun,
      upstreamSingleCalls: up.singleCalls,
      upstreamBatchOps: up.batchOps,
      redisRestarts,
      bursts,
      events,
      unfinished,
      inFlightMax,
      choreFailures: failures,
    };
  } finally {
    await Promise.all(replicas.map((r) => r.proxy.stop()));
    await redis?.stop();
    await upstream.close();
  }
}

/** Full GCs a replica has run: its nodejs_gc_duration_seconds histogram's count for kind="major". */
function majorGcCount(metrics: string): number {
  const n = metricValue(metrics, 'nodejs_gc_duration_seconds_count', { kind: 'major' });
  return Number.isFinite(n) ? n : 0;
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

/**
 * Theil–Sen slope: the median of the slopes between every pair of points. One spike (a burst's
 * minute) moves it little, where it can tilt a least-squares line; NaN with fewer than two points.
 */
export function medianSlope(xs: number[], ys: number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i++)
    for (let j = i + 1; j < xs.length; j++) {
      const dx = (xs[j] as number) - (xs[i] as number);
      if (dx !== 0) slopes.push(((ys[j] as number) - (ys[i] as number)) / dx);
    }
  return percentile(slopes, 50);
}

const median = (values: number[]) => percentile(values, 50);

/** What the report says about trends: computed over the samples after the first twelfth (5 min of an hour). */
export function soakTrends(result: SoakResult) {
  const warmUpSec = result.options.durationMs / 1000 / 12;
  const after = result.samples.filter((s) => s.atSec >= warmUpSec);
  const minutes = after.map((s) => s.atSec / 60);
  const heap = [0, 1].map((i) => {
    const points = after.filter((s) => (s.heapAfterGcMb[i] ?? 0) > 0);
    const xs = points.map((s) => s.atSec / 60);
    const ys = points.map((s) => s.heapAfterGcMb[i] ?? 0);
    return { perMin: slope(xs, ys), medianPerMin: medianSlope(xs, ys), first: ys[0], last: ys.at(-1) };
  });
  const p99 = after.map((s) => s.p99Ms);
  return {
    warmUpSec,
    heap,
    p99PerMin: slope(minutes, p99),
    p99MedianPerMin: medianSlope(minutes, p99),
    p99Median: median(p99),
    answeredMedian: median(after.map((s) => s.callsPerSec)),
    sentMedian: median(after.map((s) => s.sentPerSec)),
    loopDelayMax: Math.max(0, ...after.map((s) => s.loopDelayP99Ms)),
    cpuMean: Object.fromEntries(
      Object.keys(after[0]?.cpu ?? {}).map((k) => {
        const values = after.map((s) => s.cpu[k] ?? Number.NaN).filter(Number.isFinite);
        return [k, values.length ? round1(values.reduce((a, b) => a + b, 0) / values.length) : Number.NaN];
      }),
    ),
    load: { min: Math.min(...after.map((s) => s.load1)), max: Math.max(...after.map((s) => s.load1)) },
  };
}

/** Pearson's correlation of two series; NaN when either is flat or they are shorter than 3. */
export function correlation(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 3) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}

/**
 * The report's line on how p99 followed the machine's load (other work on a shared machine takes CPU
 * from the replicas): the correlation over the samples after the warm-up, and the median p99 of the
 * less and the more loaded half of them.
 */
export function p99AgainstLoad(samples: SoakSample[], warmUpSec: number): string {
  const after = samples.filter((s) => s.atSec >= warmUpSec && Number.isFinite(s.p99Ms));
  const byLoad = [...after].sort((a, b) => a.load1 - b.load1);
  const half = Math.floor(byLoad.length / 2);
  const calm = byLoad.slice(0, half);
  const busy = byLoad.slice(byLoad.length - half);
  const p99s = (list: SoakSample[]) => list.map((s) => s.p99Ms);
  const loads = (list: SoakSample[]) => list.map((s) => s.load1);
  const r = correlation(
    after.map((s) => s.load1),
    after.map((s) => s.p99Ms),
  );
  return (
    `- p99 against the machine's 1-minute load average (same samples): correlation ${fixed(r, 2)}; ` +
    `median p99 ${fixed(median(p99s(calm)), 0)} ms in the calmer half (load ${fixed(Math.min(...loads(calm)), 2)}–${fixed(Math.max(...loads(calm)), 2)}), ` +
    `${fixed(median(p99s(busy)), 0)} ms in the busier half (load ${fixed(Math.min(...loads(busy)), 2)}–${fixed(Math.max(...loads(busy)), 2)})`
  );
}

/**
 * The four series as one SVG: heap after GC and RSS (a line per replica), p99 and calls answered per
 * second; dashed verticals where Redis restarted (grey) and 5xx bursts began (orange).
 */
export function soakSvg(result: SoakResult): string {
  const W = 720;
  const H = 160;
  const PAD = { l: 56, r: 12, t: 22, b: 22 };
  const xs = result.samples.map((s) => s.atSec);
  const xMax = Math.max(1, result.options.durationMs / 1000, ...xs);
  const panels: Array<{ title: string; lines: number[][] }> = [
    {
      title: 'heap after GC (MB) — replica A blue, B red',
      lines: [0, 1].map((i) => result.samples.map((s) => s.heapAfterGcMb[i] ?? 0)),
    },
    {
      title: 'RSS (MB) — replica A blue, B red',
      lines: [0, 1].map((i) => result.samples.map((s) => s.rssMb[i] ?? 0)),
    },
    {
      title: 'p99 latency (ms) of the calls answered in each interval',
      lines: [result.samples.map((s) => (Number.isFinite(s.p99Ms) ? s.p99Ms : 0))],
    },
    { title: 'calls answered per second', lines: [result.samples.map((s) => s.callsPerSec)] },
  ];
  const colors = ['#1f77b4', '#d62728'];
  const parts: string[] = [];
  panels.forEach((panel, p) => {
    const top = p * H;
    const yMax = Math.max(1, ...panel.lines.flat()) * 1.1;
    const x = (v: number) => PAD.l + (v / xMax) * (W - PAD.l - PAD.r);
    const y = (v: number) => top + H - PAD.b - (v / yMax) * (H - PAD.t - PAD.b);
    for (const e of result.events) {
      const color = e.kind === 'redis restart' ? '#999' : '#ff7f0e';
      parts.push(
        `<line x1="${x(e.atSec).toFixed(1)}" y1="${top + PAD.t}" x2="${x(e.atSec).toFixed(1)}" y2="${y(0)}" stroke="${color}" stroke-dasharray="3,3"/>`,
      );
    }
    parts.push(
      `<text x="${PAD.l}" y="${top + 15}" font-size="12">${panel.title}</text>`,
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

const fixed = (x: number | undefined, digits: number) =>
  x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);

/** The markdown report: the run, the totals, the trends and a row per sample. */
export function soakMarkdown(result: SoakResult, svgName: string): string {
  const o = result.options;
  const t = soakTrends(result);
  const cpuNames = Object.keys(result.samples[0]?.cpu ?? {});
  const rows = result.samples.map(
    (s) =>
      `| ${s.atSec} | ${s.heapAfterGcMb.join(' / ')} | ${s.majorGcs.join(' / ')} | ${s.rssMb.join(' / ')} | ` +
      `${s.p50Ms} / ${s.p99Ms} | ${s.callsPerSec} | ${s.sentPerSec} | ${s.inFlight} (${s.inFlightMax}) | ` +
      `${cpuNames.map((k) => fixed(s.cpu[k], 0)).join(' / ')} | ${s.load1} |`,
  );
  const minutes = (sec: number) => (sec >= 120 ? `${Math.round(sec / 60)} min` : `${Math.round(sec)} s`);
  const batchSize =
    result.upstreamBatchesRun > 0 ? result.upstreamBatchOps / result.upstreamBatchesRun : Number.NaN;
  return [
    '# Soak',
    '',
    `Generated by \`pnpm soak\` (test/bench/soak.ts, test/chaos/soak-engine.ts). Two replicas and Redis,`,
    `${o.ratePerSec} calls/s open loop for ${minutes(o.durationMs / 1000)}, 20 % writes, a new appId and a new`,
    `credential every second, a Redis restart every ${minutes(o.redisRestartEveryMs / 1000)} and an upstream 5xx burst`,
    `(${Math.round(o.burstMs / 1000)} s) every ${minutes(o.burstEveryMs / 1000)}; sampled every ${minutes(o.sampleEveryMs / 1000)}. The load client, the fake`,
    'upstream (its own process), both replicas and Redis share one machine; the CPU columns say where it went.',
    '',
    `![soak series](${svgName})`,
    '',
    `- sent ${result.sent} (${result.writesSent} writes), answered ${result.answered}, **lost ${result.lost}** (no HTTP answer), ` +
      `**duplicated ${result.duplicated}** (a POST the upstream ran more often than it was sent; ${result.writesRun} writes ran once, ` +
      `${result.foreign} unknown POSTs ran)`,
    `- transport errors by cause: ${JSON.stringify(result.transportErrors)}`,
    `- answers: ${JSON.stringify(result.statuses)}`,
    `- upstream: ${result.upstreamBatchCalls} batch calls, ${result.upstreamBatchesRun} run (${fixed(batchSize, 2)} ops each), ` +
      `${result.upstreamSingleCalls} single calls, ${result.upstream429} 429s ` +
      `(the fake enforces no limit here), ${result.upstreamFaults} calls answered 503 by the bursts; ` +
      `Redis restarts ${result.redisRestarts}; 5xx bursts ${result.bursts}`,
    `- heap after GC, slope after the first ${minutes(t.warmUpSec)}: ` +
      `${t.heap.map((h) => fixed(h.perMin, 3)).join(' / ')} MB/min least squares, ` +
      `${t.heap.map((h) => fixed(h.medianPerMin, 3)).join(' / ')} MB/min median of pairs (A / B); ` +
      `from ${t.heap.map((h) => `${fixed(h.first, 1)} to ${fixed(h.last, 1)}`).join(' / ')} MB`,
    `- p99 after the first ${minutes(t.warmUpSec)}: median ${fixed(t.p99Median, 0)} ms; slope ${fixed(t.p99PerMin, 2)} ms/min least squares, ` +
      `${fixed(t.p99MedianPerMin, 2)} ms/min median of pairs`,
    p99AgainstLoad(result.samples, t.warmUpSec),
    `- calls/s after the first ${minutes(t.warmUpSec)} (median of samples): answered ${t.answeredMedian}, sent ${t.sentMedian}; ` +
      `most in flight ${result.inFlightMax}; the client's event-loop delay p99 at most ${t.loopDelayMax} ms; ` +
      `${result.unfinished} unanswered when the schedule ended, all answered ${fixed(result.elapsedSec - o.durationMs / 1000, 1)} s later`,
    ...(result.choreFailures.length > 0
      ? [`- **the soak's own chores failed** (the run is suspect): ${result.choreFailures.join('; ')}`]
      : []),
    `- CPU, mean % of one core (${cpuNames.join(' / ')}): ${cpuNames.map((k) => fixed(t.cpuMean[k], 0)).join(' / ')}; ` +
      `load average (1 min) ${t.load.min}–${t.load.max}`,
    '',
    `| s | heap after GC MB (A / B) | full GCs | RSS MB (A / B) | p50 / p99 ms | answered/s | sent/s | in flight (max) | CPU % ${cpuNames.join(' / ')} | load |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
