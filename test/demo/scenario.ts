// The demo's workload, shared by `pnpm demo` (everything in one process tree) and the compose load
// client: seed an app's users and conversations, then offer load in phases and measure each phase.

import type { FakeCall, FakeUpstreamStats } from '../fake-upstream/index.js';
import { type LiveCounters, runLoad } from './load.js';
import type { PhaseRow } from './report.js';

export interface Phase {
  readonly name: string;
  readonly ratePerSec: number;
  readonly durationMs: number;
  /** The baseline: the same calls straight at the upstream, without the proxy. */
  readonly direct?: boolean;
}

/** Upstream counters, cumulative: the scenario takes differences around each phase. */
export interface UpstreamCounters {
  /** Every call that reached the upstream, refused ones included. */
  readonly calls: number;
  /** Batch calls executed, and the ops they carried. */
  readonly batchCalls: number;
  readonly batchOps: number;
  /** Calls the upstream refused with 429. */
  readonly rejected429: number;
}

export interface ScenarioOptions {
  readonly targets: readonly string[];
  /** The upstream's base URL, for direct phases. */
  readonly upstreamUrl?: string;
  readonly appId: string;
  readonly secret: string;
  readonly phases: readonly Phase[];
  readonly users: number;
  readonly timeoutMs: number;
  readonly upstreamCounters: () => Promise<UpstreamCounters>;
  /** Progress lines, about one a second. */
  readonly log: (line: string) => void;
}

/**
 * Light load leaves batch tokens to spare (latency first: small batches on the window), the last
 * phase sits just under the batch budget (throughput first: batches fill up).
 */
export const DEFAULT_PHASES: readonly Phase[] = [
  { name: 'light', ratePerSec: 3, durationMs: 4_000 },
  { name: 'busy', ratePerSec: 20, durationMs: 4_000 },
  { name: 'near limit', ratePerSec: 34, durationMs: 6_000 },
];

/**
 * `pnpm demo`: light load to above what both budgets allow together through the proxy, where it sheds
 * the excess with 503 + Retry-After instead of passing 429s on; then the baseline: the near-limit
 * load sent straight at the upstream, whose single-call budget answers most of it 429.
 */
export const DEMO_PHASES: readonly Phase[] = [
  ...DEFAULT_PHASES,
  { name: 'overload', ratePerSec: 90, durationMs: 4_000 },
  // Last: the direct calls drain the upstream's single-call budget behind the proxy's back (the
  // proxy's limiter cannot know), which would earn the next proxied phase a 429.
  { name: 'direct', ratePerSec: 34, durationMs: 4_000, direct: true },
];

const SEED_CONCURRENCY = 20;

/** Creates each user and a conversation it takes part in, straight at the upstream (not measured). */
export async function seed(upstreamUrl: string, appId: string, secret: string, users: number): Promise<void> {
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${upstreamUrl}/v1/${appId}${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`seeding ${path}: upstream answered ${res.status}`);
  };
  // A few at a time: the fake answers each after its latency, and the user must exist first.
  const seedOne = async (u: number) => {
    await put(`/users/user-${u}`, { name: `User ${u}` });
    await put(`/conversations/conv-${u}`, { participants: [`user-${u}`] });
  };
  for (let u = 0; u < users; u += SEED_CONCURRENCY) {
    const batch = Array.from({ length: Math.min(SEED_CONCURRENCY, users - u) }, (_, k) => seedOne(u + k));
    await Promise.all(batch);
  }
}

/** Half reads, a quarter user updates, a quarter chat messages, spread over `users` users. */
function mix(users: number) {
  return (i: number) => {
    const u = (i * 7919) % users;
    switch (i % 4) {
      case 1:
        return { method: 'PUT', path: `/users/user-${u}`, body: { custom: { seen: String(i) } } } as const;
      case 3:
        return {
          method: 'POST',
          path: `/conversations/conv-${u}/messages`,
          body: [{ text: `message ${i}`, sender: `user-${u}`, type: 'UserMessage' }],
        } as const;
      default:
        return { method: 'GET', path: `/users/user-${u}` } as const;
    }
  };
}

export async function runScenario(o: ScenarioOptions): Promise<PhaseRow[]> {
  const rows: PhaseRow[] = [];
  const began = performance.now();
  for (const phase of o.phases) {
    const before = await o.upstreamCounters();
    const live: LiveCounters = { sent: 0, answered: 0 };
    const ticker = setInterval(() => {
      void o.upstreamCounters().then(
        (now) => {
          const t = ((performance.now() - began) / 1000).toFixed(1).padStart(5);
          o.log(
            `[${t}s] ${phase.name.padEnd(10)} sent ${String(live.sent).padStart(4)}  answered ${String(live.answered).padStart(4)}  ` +
              `upstream calls ${now.calls - before.calls}  upstream 429s ${now.rejected429 - before.rejected429}`,
          );
        },
        () => {},
      );
    }, 1_000);
    if (phase.direct && o.upstreamUrl === undefined) throw new Error(`phase ${phase.name}: no upstreamUrl`);
    const result = await runLoad({
      targets: phase.direct && o.upstreamUrl !== undefined ? [o.upstreamUrl] : o.targets,
      appId: o.appId,
      authorization: `Bearer ${o.secret}`,
      ratePerSec: phase.ratePerSec,
      durationMs: phase.durationMs,
      timeoutMs: o.timeoutMs,
      call: mix(o.users),
      live,
    }).finally(() => clearInterval(ticker));
    const after = await o.upstreamCounters();
    for (const [status, n] of result.failures) {
      o.log(
        `  ${phase.name}: ${n} call(s) answered ${status === 0 ? 'with no answer (network/timeout)' : status}`,
      );
    }
    rows.push({
      phase: phase.name,
      ratePerSec: phase.ratePerSec,
      callsIn: result.sent,
      ok: result.ok,
      shed: result.shed,
      upstreamCalls: after.calls - before.calls,
      batchCalls: after.batchCalls - before.batchCalls,
      batchOps: after.batchOps - before.batchOps,
      latenciesMs: result.latenciesMs,
      upstream429: after.rejected429 - before.rejected429,
    });
  }
  return rows;
}

/** The counters the scenario needs, read off the fake upstream's own statistics. */
export function countersFromStats(stats: FakeUpstreamStats): UpstreamCounters {
  return {
    calls: stats.batchCalls + stats.singleCalls,
    batchCalls: stats.batchSizes.length,
    batchOps: stats.batchSizes.reduce((a, b) => a + b, 0),
    rejected429: stats.rejected429.batch + stats.rejected429.rest,
  };
}

/** One request-log line of `pnpm fake-upstream`: time, call, status, ops of a batch, duration. */
export function callLine(call: FakeCall, at = new Date()): string {
  const ops = call.ops === undefined ? '' : ` (${call.ops} op${call.ops === 1 ? '' : 's'})`;
  return `${at.toISOString().slice(11, 23)} #${call.callId} ${call.method} ${call.target} → ${call.status}${ops} ${call.ms.toFixed(1)} ms`;
}
