// What the soak's load client (soak-engine.ts, through soak-upstream-process.ts) and its fake upstream
// (soak-upstream.ts, a child process of its own) say to each other over the IPC channel, and the one
// rule both sides must agree on: which calls are writes, and how a write names itself.

/** Call n is a write (a POST naming itself) when n % WRITE_EVERY === 0: 20 % writes. */
export const WRITE_EVERY = 5;
export const isWrite = (n: number): boolean => n % WRITE_EVERY === 0;
/** The id of call n; its POST's message text is `op:<id>` (fleet-kit's opText). */
export const callId = (n: number): string => `s${n}`;
/** Call n from a POST op's message text, or undefined when the text names no soak call. */
export function callOfText(text: unknown): number | undefined {
  if (typeof text !== 'string' || !text.startsWith('op:s')) return undefined;
  const n = Number(text.slice(4));
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Seeded at the fake for every new app, so reads and writes find them. */
export const CONVERSATIONS = 5;

export type SoakUpstreamRequest =
  /** Knows the app from now on and seeds its conversations; answered when they are in. */
  | { id: number; type: 'register'; app: string; secret: string }
  /** Every call answered 503 (nothing run) from now on, or no more. */
  | { id: number; type: 'burst'; on: boolean }
  | { id: number; type: 'stats' }
  /** The duplicates, given how many calls were sent (call n was sent once iff n < sent). */
  | { id: number; type: 'verdict'; sent: number };

/** The fake's counters since it started (the parent takes differences). */
export interface SoakUpstreamStats {
  batchCalls: number;
  singleCalls: number;
  /** Batch calls executed (not refused by a burst), and the ops they carried. */
  batchesRun: number;
  batchOps: number;
  /** Ops that ran (batched or single), any method. */
  executedOps: number;
  /** Refusals by the fake's rate limiter (the soak's fake has none configured: 0). */
  rejected429: number;
  /** Calls the fault plan answered (the 5xx bursts' 503s). */
  faultsApplied: number;
  unauthorized: number;
  heapUsedMb: number;
  rssMb: number;
  /** process.cpuUsage() of the fake, user + system, µs. */
  cpuMicros: number;
  /** Event-loop utilisation since the previous stats request (0–1). */
  elu: number;
}

export interface SoakVerdict {
  /** Calls whose POST ran more often than it was sent (ops, not extra runs). */
  duplicated: number;
  /** Extra runs over all of them. */
  extraRuns: number;
  /** POSTs sent that ran at least once. */
  writesRun: number;
  /** POSTs run whose text names no soak call (should be 0). */
  foreign: number;
  /** Seeding attempts refused (a burst) and retried. */
  seedRetries: number;
}

export interface SoakUpstreamReply {
  id: number;
  /** Sent once with id 0 when the fake listens. */
  url?: string;
  stats?: SoakUpstreamStats;
  verdict?: SoakVerdict;
  error?: string;
}
