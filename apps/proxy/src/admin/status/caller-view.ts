// What callers got, for the status page: every caller request (batched, passed through, the caller's
// own batch call, refused at the edge) with its own status — an op's 404 inside a batch counts as a
// 404, not as the batch call's 200 — and its latency quantiles.
//
// Nothing is counted here: the numbers are differences of the metrics' own cumulative series
// (`batch_proxy_requests_total`, `batch_proxy_request_duration_seconds`), read once a second by the
// sampler, so the per-call path does no work for the page.

import type { CallerTotals } from '../metrics/metrics.js';

export const CALLER_KINDS = ['batched', 'passthrough', 'client-batch', 'rejected'] as const;
export type CallerKind = (typeof CALLER_KINDS)[number];

/** Cumulative counts keyed for subtraction: requests by `kind|status|source|reason`, latency by `kind|le`. */
export interface CallerCounts {
  readonly requests: ReadonlyMap<string, number>;
  readonly latency: ReadonlyMap<string, number>;
}

export const NO_CALLERS: CallerCounts = { requests: new Map(), latency: new Map() };

export function countsOf(totals: CallerTotals): CallerCounts {
  const requests = new Map<string, number>();
  for (const r of totals.requests)
    requests.set(`${r.kind}|${r.status}|${r.source}|${r.reason ?? ''}`, r.count);
  const latency = new Map<string, number>();
  for (const b of totals.latency) latency.set(`${b.kind}|${b.le}`, b.count);
  return { requests, latency };
}

/** `now − then`, series by series (a series new since `then` counts from 0). */
export function minus(now: CallerCounts, then: CallerCounts): CallerCounts {
  const sub = (a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>) => {
    const out = new Map<string, number>();
    for (const [key, n] of a) out.set(key, Math.max(0, n - (b.get(key) ?? 0)));
    return out;
  };
  return { requests: sub(now.requests, then.requests), latency: sub(now.latency, then.latency) };
}

export interface Quantiles {
  /** Calls measured. */
  readonly count: number;
  /** Median caller latency in ms; null without calls. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/** Caller answers with one status, made by one side, by kind of call. */
export interface CallerStatusRow {
  readonly status: string;
  /** `proxy`: the proxy's own answer (a shed, a refusal); `upstream`: the upstream's, relayed. */
  readonly source: string;
  readonly batched: number;
  readonly passthrough: number;
  readonly clientBatch: number;
  readonly rejected: number;
}

export interface CallerView {
  readonly total: number;
  readonly byKind: Record<CallerKind, number>;
  /** Status ascending, then source. */
  readonly statuses: CallerStatusRow[];
  /** Why calls were not batched (pass-through and client batch calls), most frequent first. */
  readonly passthroughReasons: Array<{ reason: string; count: number }>;
  readonly latency: { readonly all: Quantiles; readonly byKind: Record<CallerKind, Quantiles> };
}

export function callsIn(counts: CallerCounts): number {
  let total = 0;
  for (const n of counts.requests.values()) total += n;
  return total;
}

export function viewOf(counts: CallerCounts): CallerView {
  const byKind = { batched: 0, passthrough: 0, 'client-batch': 0, rejected: 0 } as Record<CallerKind, number>;
  const rows = new Map<string, { -readonly [K in keyof CallerStatusRow]: CallerStatusRow[K] }>();
  const reasons = new Map<string, number>();
  for (const [key, n] of counts.requests) {
    if (n === 0) continue;
    const [kind = '', status = '', source = '', reason = ''] = key.split('|');
    if (!isKind(kind)) continue;
    byKind[kind] += n;
    const id = `${status}|${source}`;
    const row = rows.get(id) ?? { status, source, batched: 0, passthrough: 0, clientBatch: 0, rejected: 0 };
    row[kind === 'client-batch' ? 'clientBatch' : kind] += n;
    rows.set(id, row);
    if (reason) reasons.set(reason, (reasons.get(reason) ?? 0) + n);
  }
  const byKindLatency = {} as Record<CallerKind, Quantiles>;
  for (const kind of CALLER_KINDS) byKindLatency[kind] = quantilesOf(bucketsOf(counts, kind));
  return {
    total: CALLER_KINDS.reduce((sum, k) => sum + byKind[k], 0),
    byKind,
    statuses: [...rows.values()].sort((x, y) => cmp(x.status, y.status) || cmp(x.source, y.source)),
    passthroughReasons: [...reasons]
      .map(([reason, count]) => ({ reason, count }))
      .sort((x, y) => y.count - x.count || cmp(x.reason, y.reason)),
    latency: { all: quantilesOf(bucketsOf(counts)), byKind: byKindLatency },
  };
}

/** p50 and p99 of the calls in `counts` (all kinds). */
export function latencyOf(counts: CallerCounts): Quantiles {
  return quantilesOf(bucketsOf(counts));
}

/** Cumulative buckets, `le` ascending, summed over kinds (or one kind). */
function bucketsOf(counts: CallerCounts, kind?: CallerKind): Array<{ le: number; count: number }> {
  const byLe = new Map<number, number>();
  for (const [key, n] of counts.latency) {
    const [k = '', le = ''] = key.split('|');
    if (kind !== undefined && k !== kind) continue;
    const bound = Number(le);
    byLe.set(bound, (byLe.get(bound) ?? 0) + n);
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((x, y) => x.le - y.le);
}

function quantilesOf(buckets: ReadonlyArray<{ le: number; count: number }>): Quantiles {
  const p50 = quantile(0.5, buckets);
  const p99 = quantile(0.99, buckets);
  return {
    count: buckets.at(-1)?.count ?? 0,
    p50Ms: p50 === null ? null : ms(p50),
    p99Ms: p99 === null ? null : ms(p99),
  };
}

/**
 * The q-quantile in seconds from cumulative histogram buckets, as Prometheus' histogram_quantile
 * computes it: linear within the bucket the rank falls in, 0 as the first bucket's lower bound, and
 * the highest finite bound when the rank falls in the +Inf bucket. So it is as exact as the buckets
 * (1, 2, 5, 10, 20, 50 ms, …): a p99 "between 20 and 50 ms", placed linearly.
 */
export function quantile(q: number, buckets: ReadonlyArray<{ le: number; count: number }>): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank && b.count > lowerCount) {
      if (!Number.isFinite(b.le)) return lowerLe;
      return lowerLe + ((b.le - lowerLe) * (rank - lowerCount)) / (b.count - lowerCount);
    }
    lowerLe = Number.isFinite(b.le) ? b.le : lowerLe;
    lowerCount = b.count;
  }
  return lowerLe;
}

function isKind(kind: string): kind is CallerKind {
  return (CALLER_KINDS as readonly string[]).includes(kind);
}

function ms(seconds: number): number {
  return Math.round(seconds * 100_000) / 100;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
