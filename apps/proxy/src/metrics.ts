// Metrics through the OpenTelemetry API, exported in Prometheus text on the admin listener (SPEC §10).
// The engine reports through SchedulerObserver hooks; this module turns them into instruments.

import type { Lane, SchedulerObserver } from '@batch-proxy/core';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { AggregationType, MeterProvider } from '@opentelemetry/sdk-metrics';

export type RequestKind = 'batched' | 'passthrough' | 'client-batch' | 'rejected';

export interface ProxyMetrics {
  /**
   * The Prometheus text of every instrument. Rendered here, not by the exporter's own request
   * handler: that one writes to the response itself, which a framework that answers HEAD (or an
   * error) first turns into a second end() and an unhandled stream error (SPEC §8c).
   */
  text(): Promise<string>;
  readonly observer: SchedulerObserver;
  request(kind: RequestKind, status: number): void;
  shutdown(): Promise<void>;
}

const SIZE_BUCKETS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20];
const MS_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];

export function createMetrics(gauges: {
  queued(): Array<{ appId: string; queued: number; inflight: number }>;
  redisFallback(): boolean;
}): ProxyMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const provider = new MeterProvider({
    readers: [exporter],
    views: [
      {
        instrumentName: 'batch_proxy_batch_size',
        aggregation: {
          type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
          options: { boundaries: SIZE_BUCKETS },
        },
      },
      {
        instrumentName: 'batch_proxy_queue_wait',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: MS_BUCKETS } },
      },
      {
        instrumentName: 'batch_proxy_upstream_duration',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: MS_BUCKETS } },
      },
      {
        instrumentName: 'batch_proxy_limiter_wait',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: MS_BUCKETS } },
      },
    ],
  });
  const meter = provider.getMeter('batch-proxy');

  const requests = meter.createCounter('batch_proxy_requests', {
    description: 'Caller requests by kind and status',
  });
  const batchSize = meter.createHistogram('batch_proxy_batch_size', {
    description: 'Ops per upstream call',
    unit: '{op}',
  });
  const flushes = meter.createCounter('batch_proxy_flushes', {
    description: 'Upstream calls sent, by lane and reason',
  });
  const queueWait = meter.createHistogram('batch_proxy_queue_wait', {
    description: 'Time an op waited before leaving',
    unit: 'ms',
  });
  const upstreamCalls = meter.createCounter('batch_proxy_upstream_calls', {
    description: 'Upstream calls by lane and status',
  });
  const upstreamDuration = meter.createHistogram('batch_proxy_upstream_duration', {
    description: 'Upstream call duration',
    unit: 'ms',
  });
  const limiterDecisions = meter.createCounter('batch_proxy_limiter_decisions', {
    description: 'Rate-limiter decisions by bucket and result',
  });
  const limiterWait = meter.createHistogram('batch_proxy_limiter_wait', {
    description: 'Wait announced by a denial',
    unit: 'ms',
  });
  const collapsed = meter.createCounter('batch_proxy_collapsed_reads', {
    description: 'GETs answered by an identical pending read',
  });
  const shed = meter.createCounter('batch_proxy_shed', {
    description: 'Calls refused by the proxy (429 queue full, 503 deadline)',
  });
  const requeued = meter.createCounter('batch_proxy_requeued_ops', {
    description: 'Ops put back in the queue (upstream 429, retry)',
  });
  const opsByLane = meter.createCounter('batch_proxy_ops', { description: 'Ops answered, by lane' });

  meter
    .createObservableGauge('batch_proxy_redis_fallback', {
      description: '1 while the in-process limiter stands in for Redis',
    })
    .addCallback((r) => r.observe(gauges.redisFallback() ? 1 : 0));

  const observer: SchedulerObserver = {
    onFlush: (e) => {
      batchSize.record(e.size, { lane: e.lane });
      flushes.add(1, { lane: e.lane, reason: e.reason });
    },
    onUpstream: (e) => {
      upstreamCalls.add(1, { lane: e.lane, status: String(e.status) });
      upstreamDuration.record(e.ms, { lane: e.lane });
    },
    onAnswer: (e) => {
      queueWait.record(e.queueMs, { lane: laneLabel(e.lane) });
      opsByLane.add(1, { lane: laneLabel(e.lane) });
    },
    onCollapsed: () => collapsed.add(1),
    onShed: (e) => shed.add(1, { code: e.code }),
    onLimiter: (e) => {
      limiterDecisions.add(1, { bucket: e.bucket, result: e.granted ? 'granted' : 'denied' });
      if (!e.granted) limiterWait.record(e.waitMs, { bucket: e.bucket });
    },
    onRequeue: (e) => requeued.add(e.count, { reason: e.reason }),
  };

  return {
    text: async () => {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics) + appGaugesText(boundedApps(gauges.queued()));
    },
    observer,
    request: (kind, status) => requests.add(1, { kind, status: String(status) }),
    shutdown: () => provider.shutdown(),
  };
}

/** Apps with a series of their own; the others are summed into one `app="_other"` series. */
export const MAX_APP_SERIES = 50;

interface AppGauge {
  readonly appId: string;
  readonly queued: number;
  readonly inflight: number;
}

/**
 * The busiest MAX_APP_SERIES apps, plus one `_other` sum: a label set per app ever seen would grow
 * with traffic (SPEC §8c).
 */
function boundedApps(apps: readonly AppGauge[]): readonly AppGauge[] {
  if (apps.length <= MAX_APP_SERIES) return apps;
  const busiest = [...apps].sort((a, b) => b.queued + b.inflight - (a.queued + a.inflight));
  const other = { appId: '_other', queued: 0, inflight: 0 };
  for (const a of busiest.slice(MAX_APP_SERIES)) {
    other.queued += a.queued;
    other.inflight += a.inflight;
  }
  return [...busiest.slice(0, MAX_APP_SERIES), other];
}

const APP_GAUGES = [
  { name: 'batch_proxy_queued_ops', help: 'Ops waiting in the queue', value: (a: AppGauge) => a.queued },
  {
    name: 'batch_proxy_inflight_ops',
    help: 'Ops in upstream calls not yet answered',
    value: (a: AppGauge) => a.inflight,
  },
] as const;

/**
 * The per-app gauges in Prometheus text, from the engine's snapshot at scrape time. Rendered here and
 * not through OpenTelemetry: its cumulative storage keeps the last value of every label set it ever
 * saw, so an app the engine has freed would stay in every scrape (and in memory) for good.
 */
function appGaugesText(apps: readonly AppGauge[]): string {
  let text = '';
  for (const gauge of APP_GAUGES) {
    text += `# HELP ${gauge.name} ${gauge.help}\n# TYPE ${gauge.name} gauge\n`;
    for (const a of apps) {
      text += `${gauge.name}{app="${escapeLabel(a.appId)}",otel_scope_name="batch-proxy"} ${gauge.value(a)}\n`;
    }
  }
  return text;
}

/** Prometheus text-format label value escaping: backslash, double quote and line feed. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function laneLabel(lane: Lane | undefined): string {
  return lane ?? 'none';
}
