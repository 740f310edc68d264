// The demo's closing table: what callers sent and felt, and what the upstream received.

export interface PhaseRow {
  readonly phase: string;
  /** Offered load, calls per second (undefined for a total). */
  readonly ratePerSec: number | undefined;
  readonly callsIn: number;
  readonly ok: number;
  /** Calls the proxy shed on purpose (queue full, deadline): 429/503 with Retry-After. */
  readonly shed: number;
  readonly upstreamCalls: number;
  /** Ops carried by upstream batch calls, and how many batch calls carried them. */
  readonly batchOps: number;
  readonly batchCalls: number;
  /** Each caller's latency: from sending the call to the end of its answer. */
  readonly latenciesMs: readonly number[];
  readonly upstream429: number;
}

/** Sums the phases, latencies pooled. */
export function totalRow(rows: readonly PhaseRow[]): PhaseRow {
  const sum = (k: 'callsIn' | 'ok' | 'shed' | 'upstreamCalls' | 'batchCalls' | 'batchOps' | 'upstream429') =>
    rows.reduce((a, r) => a + r[k], 0);
  return {
    phase: 'total',
    ratePerSec: undefined,
    callsIn: sum('callsIn'),
    ok: sum('ok'),
    shed: sum('shed'),
    upstreamCalls: sum('upstreamCalls'),
    batchCalls: sum('batchCalls'),
    batchOps: sum('batchOps'),
    latenciesMs: rows.flatMap((r) => r.latenciesMs),
    upstream429: sum('upstream429'),
  };
}

/** Nearest-rank percentile of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

const ms = (v: number) => (Number.isNaN(v) ? '-' : `${Math.round(v)} ms`);

export function renderTable(rows: readonly PhaseRow[], maxOps: number): string {
  const header = [
    'phase',
    'load',
    'calls in',
    '2xx',
    'shed',
    'upstream calls out',
    'fill',
    'p50',
    'p99',
    'upstream 429s',
  ];
  const body = rows.map((r) => [
    r.phase,
    r.ratePerSec === undefined ? '' : `${r.ratePerSec}/s`,
    String(r.callsIn),
    String(r.ok),
    String(r.shed),
    String(r.upstreamCalls),
    r.batchCalls === 0 ? '-' : `${(r.batchOps / r.batchCalls).toFixed(1)}/${maxOps} ops`,
    ms(percentile(r.latenciesMs, 50)),
    ms(percentile(r.latenciesMs, 99)),
    String(r.upstream429),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...body.map(line)].join('\n');
}
