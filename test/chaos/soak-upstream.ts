// The soak's fake TalkJS upstream in a process of its own (forked by soak-upstream-process.ts), so its
// work does not share an event loop with the load client: at 1,000 calls/s the two in one process fell
// behind. Driven over the IPC channel (soak-protocol.ts): apps registered and seeded, 5xx bursts on and
// off, counters, and the verdict on duplicates.
//
// An hour at 1,000 calls/s runs millions of ops: the fake's own per-op log (`executed`) and per-call
// arrays are drained every 250 ms into counts — how often each soak call's POST ran, one byte per call
// index — so this process stays small. (The messages the POSTs create stay in the fake's store: about
// 200 bytes each, some 150 MB after an hour at 1,000/s with 20 % writes.)

import { performance } from 'node:perf_hooks';
import { startFakeUpstream } from '../fake-upstream/index.js';
import {
  CONVERSATIONS,
  callOfText,
  isWrite,
  type SoakUpstreamReply,
  type SoakUpstreamRequest,
  type SoakUpstreamStats,
  type SoakVerdict,
} from './soak-protocol.js';

const [minLatency, maxLatency] = (process.env.SOAK_UPSTREAM_LATENCY_MS ?? '2,10').split(',').map(Number);
const lo = minLatency ?? 2;
const spread = (maxLatency ?? 10) - lo;
const apps: Record<string, string> = {};
const fake = await startFakeUpstream({ apps, latencyMs: () => lo + Math.random() * spread });

/** runs[n]: how often call n's POST ran (saturating at 255). */
let runs = new Uint8Array(1 << 16);
let foreign = 0;
let batchOps = 0;
let batchesRun = 0;
let executedOps = 0;
let seedRetries = 0;

function drain(): void {
  const executed = fake.executed;
  executedOps += executed.length;
  for (const e of executed) {
    if (e.method !== 'POST' || !Array.isArray(e.body)) continue;
    const n = callOfText((e.body[0] as { text?: unknown } | undefined)?.text);
    if (n === undefined) {
      foreign++;
      continue;
    }
    if (n >= runs.length) {
      const bigger = new Uint8Array(Math.max(runs.length * 2, n + 1));
      bigger.set(runs);
      runs = bigger;
    }
    if ((runs[n] as number) < 255) runs[n] = (runs[n] as number) + 1;
  }
  executed.length = 0;
  const s = fake.stats;
  for (const size of s.batchSizes) batchOps += size;
  batchesRun += s.batchSizes.length;
  s.batchSizes.length = 0;
  s.arrivals.batch.length = 0;
  s.arrivals.rest.length = 0;
  s.rejections.length = 0;
  fake.poisonedCalls.length = 0;
}
const drainer = setInterval(drain, 250);

let lastElu = performance.eventLoopUtilization();
function stats(): SoakUpstreamStats {
  drain();
  const s = fake.stats;
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const since = performance.eventLoopUtilization(elu, lastElu);
  lastElu = elu;
  return {
    batchCalls: s.batchCalls,
    singleCalls: s.singleCalls,
    batchesRun,
    batchOps,
    executedOps,
    rejected429: s.rejected429.batch + s.rejected429.rest,
    faultsApplied: s.faultsApplied,
    unauthorized: s.unauthorized,
    heapUsedMb: mem.heapUsed / 2 ** 20,
    rssMb: mem.rss / 2 ** 20,
    cpuMicros: cpu.user + cpu.system,
    elu: since.utilization,
  };
}

function verdict(sent: number): SoakVerdict {
  drain();
  let duplicated = 0;
  let extraRuns = 0;
  let writesRun = 0;
  for (let n = 0; n < runs.length; n++) {
    const ran = runs[n] as number;
    const times = n < sent && isWrite(n) ? 1 : 0;
    if (times === 1 && ran > 0) writesRun++;
    if (ran > times) {
      duplicated++;
      extraRuns += ran - times;
    }
  }
  return { duplicated, extraRuns, writesRun, foreign, seedRetries };
}

/** Seeds the app's conversations at the fake itself; a burst refuses them too: again until they take. */
async function register(app: string, secret: string): Promise<void> {
  apps[app] = secret;
  for (let c = 0; c < CONVERSATIONS; c++) {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${fake.url}/v1/${app}/conversations/c-${c}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: '{}',
      });
      await res.arrayBuffer();
      if (res.status === 200) break;
      if (attempt === 600) throw new Error(`seeding ${app}/c-${c}: still ${res.status} after 60 s`);
      seedRetries++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const send = (reply: SoakUpstreamReply) => process.send?.(reply);

process.on('message', (m: SoakUpstreamRequest) => {
  switch (m.type) {
    case 'register':
      register(m.app, m.secret).then(
        () => send({ id: m.id }),
        (error: unknown) => send({ id: m.id, error: String(error) }),
      );
      return;
    case 'burst':
      fake.faults.always = m.on ? { status: 503, on: 'any' } : undefined;
      send({ id: m.id });
      return;
    case 'stats':
      send({ id: m.id, stats: stats() });
      return;
    case 'verdict':
      send({ id: m.id, verdict: verdict(m.sent) });
      return;
  }
});
process.once('disconnect', () => {
  clearInterval(drainer);
  void fake.close().then(() => process.exit(0));
});
send({ id: 0, url: fake.url });
