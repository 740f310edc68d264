// The caller series as the status page reads them (its sampler takes the differences).
import type { Counter } from 'prom-client';
import type { SeriesHistogram } from './series-histogram.js';

/** The caller series as counted so far, for the status page's sampler (it takes the differences). */
export interface CallerTotals {
  /** `batch_proxy_requests_total`, one entry per label set seen. */
  readonly requests: ReadonlyArray<{
    readonly kind: string;
    readonly status: string;
    readonly source: string;
    readonly reason: string | undefined;
    readonly count: number;
  }>;
  /** `batch_proxy_request_duration_seconds` buckets: cumulative count per upper bound `le` (seconds, the last Infinity), by kind. */
  readonly latency: ReadonlyArray<{ readonly kind: string; readonly le: number; readonly count: number }>;
}

/** Reads the caller counters and latency histogram as they stand; records nothing. */
export async function callerTotals(
  requests: Counter,
  requestDuration: SeriesHistogram<string>,
): Promise<CallerTotals> {
  const [counted, timed] = await Promise.all([requests.get(), requestDuration.get()]);
  return {
    requests: counted.values.map((v) => ({
      kind: String(v.labels.kind),
      status: String(v.labels.status),
      source: String(v.labels.source),
      reason: v.labels.reason === undefined ? undefined : String(v.labels.reason),
      count: v.value,
    })),
    latency: timed.values
      .filter((v) => v.metricName === 'batch_proxy_request_duration_seconds_bucket')
      .map((v) => {
        const { le } = v.labels as { le?: string | number };
        return { kind: String(v.labels.kind), le: le === '+Inf' ? Infinity : Number(le), count: v.value };
      }),
  };
}
