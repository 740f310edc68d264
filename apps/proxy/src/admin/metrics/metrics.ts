// Metrics in Prometheus text on the admin listener (SPEC §10), by Prometheus conventions: base units
// (`_seconds`), `_total` counters, every known series at 0 from start, no per-series scope label, one
// `target_info` naming the service. The engine reports through SchedulerObserver hooks; this module
// turns them into instruments.
//
// Why prom-client and not the OpenTelemetry SDK's exporter (used before): the SDK's Prometheus text
// puts `otel_scope_name` on every series, names the service `unknown_service:node` unless a resource
// is configured, and gives no runtime metrics; prom-client writes the conventions directly and brings
// Node's own (event-loop delay, heap, GC, CPU) from perf_hooks. Recording is cheaper too: measured in
// docs/metrics.md ("Why prom-client"). Traces still go through the OpenTelemetry API (tracing.ts).

import type { Lane, SchedulerObserver } from '@batch-proxy/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CallMetrics, RequestKind } from '../../http/recorded.js';
import { PASS_REASONS } from '../../http/route.js';
import { VERSION } from '../../version.js';
import { appSeries } from './app-series.js';
import { type CallerTotals, callerTotals } from './caller-totals.js';
import { PACE_DIRECTIONS, PACE_STATS, type PacingSource, registerPacing } from './pacing.js';
import { RateHeaderBoard, registerRateHeaders } from './rate-headers.js';
import { GC_KINDS, registerRuntimeMetrics } from './runtime.js';
import { SeriesHistogram } from './series-histogram.js';
import { bound, Tally } from './tally.js';

export type { AnswerSource, RequestKind, RequestRecord } from '../../http/recorded.js';
export { MAX_APP_SERIES } from './app-series.js';
export type { CallerTotals } from './caller-totals.js';

/** The data listener's records (CallMetrics.request) and the engine's events, as instruments. */
export interface ProxyMetrics extends CallMetrics {
  /**
   * The Prometheus text of every instrument. Rendered here and served by the admin app, never by a
   * library's own request handler, so HEAD and errors are answered once (SPEC §8c).
   */
  text(): Promise<string>;
  readonly observer: SchedulerObserver;
  /** Reads the caller counters and latency histogram as they stand; records nothing. */
  callers(): Promise<CallerTotals>;
  /** RATE_HEADERS: what the upstream last said of each scope's budget (the status page lists it). */
  readonly rateHeaders: RateHeaderBoard;
  shutdown(): Promise<void>;
}

const SIZE_BUCKETS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20];
/** 1 ms … 30 s. */
const SECONDS_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30];

type RequeueReason = Parameters<NonNullable<SchedulerObserver['onRequeue']>>[0]['reason'];
/**
 * Every reason the engine's `onRequeue` reports (`424`: a proxy-built Graph chain's unexecuted tail),
 * each exactly once: a reason added to or dropped from the engine's type fails the typecheck here.
 */
const REQUEUE_REASONS = { '429': true, '424': true, retry: true, split: true } satisfies Record<
  RequeueReason,
  true
>;

/** The label values the engine can report, so every series exists at 0 from the first scrape. */
export const KNOWN = {
  lanes: ['batch', 'single'],
  answerLanes: ['batch', 'single', 'none'],
  flushes: [
    ['batch', 'full'],
    ['batch', 'window'],
    ['batch', 'hold'],
    ['batch', 'drain'],
    ['single', 'single-lane'],
  ],
  buckets: ['batch', 'rest'],
  results: ['granted', 'denied'],
  shedCodes: ['PROXY_QUEUE_FULL', 'PROXY_DEADLINE_EXCEEDED', 'PROXY_CIRCUIT_OPEN'],
  requeueReasons: Object.keys(REQUEUE_REASONS) as RequeueReason[],
  kinds: ['batched', 'passthrough', 'client-batch', 'rejected'],
  gcKinds: GC_KINDS,
  paceStats: PACE_STATS,
  paceDirections: PACE_DIRECTIONS,
} as const;

export interface MetricSources extends PacingSource {
  queued(): Array<{
    appId: string;
    queued: number;
    inflight: number;
    circuit?: string;
    openGroups?: number;
    pausedGroups?: number;
    budgetScopes?: number;
    queuedHigh?: number;
    queuedLow?: number;
  }>;
  redisFallback(): boolean;
}

type LabelSet = Readonly<Record<string, string>>;

/** One instrument: its name, help and labels, and the series it has at 0 from the first scrape. */
interface Definition {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  /** Every known series at 0 from start: absent() alerts and rate() panels work before the first event. */
  readonly zero: readonly LabelSet[];
}

interface HistogramDefinition extends Definition {
  readonly buckets: readonly number[];
}

/** A gauge read from the engine's state at scrape time. */
interface GaugeDefinition {
  readonly name: string;
  readonly help: string;
  read(sources: MetricSources): number;
}

/** One label set per value: `each('lane', ['batch', 'single'])` → `[{ lane: 'batch' }, { lane: 'single' }]`. */
const each = (label: string, values: readonly string[]): LabelSet[] => values.map((v) => ({ [label]: v }));

const COUNTERS = {
  // Read by the status page through get(), which runs collect() first: the tally is flushed then too.
  requests: {
    name: 'batch_proxy_requests_total',
    help: 'Caller requests answered, by kind, status, who made the answer (source) and pass-through reason',
    labelNames: ['kind', 'status', 'source', 'reason'],
    zero: [],
  },
  passthrough: {
    name: 'batch_proxy_passthrough_total',
    help: 'Calls not batched, by reason (SPEC §3)',
    labelNames: ['reason'],
    zero: each('reason', PASS_REASONS),
  },
  flushes: {
    name: 'batch_proxy_flushes_total',
    help: 'Upstream calls sent, by lane and reason',
    labelNames: ['lane', 'reason'],
    zero: KNOWN.flushes.map(([lane, reason]) => ({ lane, reason })),
  },
  upstreamCalls: {
    name: 'batch_proxy_upstream_calls_total',
    help: 'Upstream calls by lane and status',
    labelNames: ['lane', 'status'],
    zero: [],
  },
  limiterDecisions: {
    name: 'batch_proxy_limiter_decisions_total',
    help: 'Rate-limiter decisions by bucket and result',
    labelNames: ['bucket', 'result'],
    zero: KNOWN.buckets.flatMap((bucket) => KNOWN.results.map((result) => ({ bucket, result }))),
  },
  collapsed: {
    name: 'batch_proxy_collapsed_reads_total',
    help: 'GETs answered by an identical pending read',
    zero: [{}],
  },
  shed: {
    name: 'batch_proxy_shed_total',
    help: 'Calls refused by the proxy, by code (429 queue full, 503 deadline, 503 circuit open)',
    labelNames: ['code'],
    zero: each('code', KNOWN.shedCodes),
  },
  requeued: {
    name: 'batch_proxy_requeued_ops_total',
    help: 'Ops put back in the queue, by reason (429 upstream refusal, 424 Graph chain rest, retry, split)',
    labelNames: ['reason'],
    zero: each('reason', KNOWN.requeueReasons),
  },
  ops: {
    name: 'batch_proxy_ops_total',
    help: 'Ops answered, by lane',
    labelNames: ['lane'],
    zero: each('lane', KNOWN.answerLanes),
  },
} satisfies Record<string, Definition>;

const HISTOGRAMS = {
  batchSize: {
    name: 'batch_proxy_batch_size',
    help: 'Ops per upstream call',
    labelNames: ['lane'],
    buckets: SIZE_BUCKETS,
    zero: each('lane', KNOWN.lanes),
  },
  upstreamDuration: {
    name: 'batch_proxy_upstream_duration_seconds',
    help: 'Upstream call duration, sent to answered',
    labelNames: ['lane'],
    buckets: SECONDS_BUCKETS,
    zero: each('lane', KNOWN.lanes),
  },
  limiterWait: {
    name: 'batch_proxy_limiter_wait_seconds',
    help: 'Wait announced by a denial',
    labelNames: ['bucket'],
    buckets: SECONDS_BUCKETS,
    zero: each('bucket', KNOWN.buckets),
  },
} satisfies Record<string, HistogramDefinition>;

/** Histograms recorded once per call or op: through series resolved once (series-histogram.ts). */
const PER_CALL_HISTOGRAMS = {
  requestDuration: {
    name: 'batch_proxy_request_duration_seconds',
    help: "Caller requests from arrival to the answer's head, by kind",
    labelNames: ['kind'],
    buckets: SECONDS_BUCKETS,
    zero: each('kind', KNOWN.kinds),
  },
  queueWait: {
    name: 'batch_proxy_queue_wait_seconds',
    help: 'Time an op waited before leaving',
    labelNames: ['lane'],
    buckets: SECONDS_BUCKETS,
    zero: each('lane', KNOWN.answerLanes),
  },
} satisfies Record<string, HistogramDefinition>;

const GAUGES: readonly GaugeDefinition[] = [
  {
    name: 'batch_proxy_redis_fallback',
    help: '1 while the in-process limiter stands in for Redis',
    read: (s) => (s.redisFallback() ? 1 : 0),
  },
  {
    name: 'batch_proxy_circuit_open_apps',
    help: 'Apps with a group (credential) whose circuit breaker is open or half-open (that group is answered 503 at once)',
    read: (s) => s.queued().filter((a) => a.circuit !== undefined && a.circuit !== 'closed').length,
  },
  {
    name: 'batch_proxy_circuit_open_groups',
    help: 'Groups (app + credential) whose circuit breaker is open or half-open, over every app',
    read: (s) => s.queued().reduce((n, a) => n + (a.openGroups ?? 0), 0),
  },
  {
    name: 'batch_proxy_paused_groups',
    help: 'Groups (app + credential) paused by a 429 of their own (SPEC §8d: the rest of their app goes on), over every app',
    read: (s) => s.queued().reduce((n, a) => n + (a.pausedGroups ?? 0), 0),
  },
  {
    name: 'batch_proxy_budget_scopes',
    help: "Budgets held beside each app's own (SPEC §8d): per tenant (Graph tid + appid) and per token the upstream has not yet accepted, over every app",
    read: (s) => s.queued().reduce((n, a) => n + (a.budgetScopes ?? 0), 0),
  },
  {
    name: 'batch_proxy_queued_high_ops',
    help: 'Queued ops of high priority (x-batch-priority or PRIORITY_RULES), over every app',
    read: (s) => s.queued().reduce((n, a) => n + (a.queuedHigh ?? 0), 0),
  },
  {
    name: 'batch_proxy_queued_low_ops',
    help: 'Queued ops of low priority (x-batch-priority or PRIORITY_RULES), over every app',
    read: (s) => s.queued().reduce((n, a) => n + (a.queuedLow ?? 0), 0),
  },
];

/**
 * What prom-client takes of a definition: its constructors copy every option onto the instrument, so
 * `zero` (a method of histograms) must not be among them.
 */
const optionsOf = ({ name, help, labelNames = [] }: Definition) => ({ name, help, labelNames });

/** Each definition of a table made into its instrument, by the same key. */
function instruments<K extends string, D, I>(table: Record<K, D>, make: (def: D, key: K) => I): Record<K, I> {
  return Object.fromEntries(
    Object.entries(table).map(([key, def]) => [key, make(def as D, key as K)]),
  ) as Record<K, I>;
}

export function createMetrics(sources: MetricSources): ProxyMetrics {
  const register = new Registry();
  const registers = [register];

  new Gauge({
    name: 'target_info',
    help: 'The service behind these series',
    labelNames: ['service_name', 'service_version'],
    registers,
  }).set({ service_name: 'batch-proxy', service_version: VERSION }, 1);

  // Per-call and per-op counts are tallied in plain numbers and added at scrape time (collect()).
  const requestTally = new Tally<string>();
  const passthroughTally = new Tally<string>();
  const opsTally = new Tally<string>();
  const tallies: Partial<Record<keyof typeof COUNTERS, Tally<string>>> = {
    requests: requestTally,
    passthrough: passthroughTally,
    ops: opsTally,
  };
  const counter = instruments(COUNTERS, (def: Definition, key) => {
    const tally = tallies[key];
    const made = new Counter({
      ...optionsOf(def),
      registers,
      ...(tally && {
        collect() {
          tally.flushInto(this);
        },
      }),
    });
    for (const labels of def.zero) made.inc(labels, 0);
    return made;
  });
  const histogram = instruments(HISTOGRAMS, (def: HistogramDefinition) => {
    const made = new Histogram({ ...optionsOf(def), buckets: [...def.buckets], registers });
    for (const labels of def.zero) made.zero(labels);
    return made;
  });
  const perCall = instruments(PER_CALL_HISTOGRAMS, (def: HistogramDefinition) => {
    const made = new SeriesHistogram({ ...optionsOf(def), buckets: def.buckets, registers });
    for (const labels of def.zero) made.zero(labels);
    return made;
  });
  for (const def of GAUGES)
    new Gauge({
      name: def.name,
      help: def.help,
      registers,
      collect() {
        this.set(def.read(sources));
      },
    });
  const collectApps = appSeries(registers, sources.queued);
  registerPacing(registers, sources);
  const rateHeaders = new RateHeaderBoard();
  registerRateHeaders(registers, rateHeaders);
  const stopRuntime = registerRuntimeMetrics(register);

  // Histograms recorded per call or op through series resolved once (prom-client hashes a label
  // object on every inc() or observe()).
  const queueWaitOf = bound((lane: string) => perCall.queueWait.labels({ lane }));
  const durationOf = bound((kind: RequestKind) => perCall.requestDuration.labels({ kind }));

  const observer: SchedulerObserver = {
    onFlush: (e) => {
      histogram.batchSize.observe({ lane: e.lane }, e.size);
      counter.flushes.inc({ lane: e.lane, reason: e.reason });
    },
    onUpstream: (e) => {
      counter.upstreamCalls.inc({ lane: e.lane, status: String(e.status) });
      histogram.upstreamDuration.observe({ lane: e.lane }, e.ms / 1000);
    },
    onAnswer: (e) => {
      const lane = laneLabel(e.lane);
      queueWaitOf(lane).observe(e.queueMs / 1000);
      opsTally.add(lane, () => ({ lane }));
    },
    onCollapsed: () => counter.collapsed.inc(),
    onShed: (e) => counter.shed.inc({ code: e.code }),
    onLimiter: (e) => {
      counter.limiterDecisions.inc({ bucket: e.bucket, result: e.granted ? 'granted' : 'denied' });
      if (!e.granted) histogram.limiterWait.observe({ bucket: e.bucket }, e.waitMs / 1000);
    },
    onRequeue: (e) => counter.requeued.inc({ reason: e.reason }, e.count),
    onRateHeaders: rateHeaders.record,
  };

  return {
    text: () => {
      collectApps();
      return register.metrics();
    },
    observer,
    rateHeaders,
    request: (r) => {
      const { kind, status, source, reason } = r;
      if (reason !== undefined) passthroughTally.add(reason, () => ({ reason }));
      requestTally.add(`${kind} ${status} ${source} ${reason ?? ''}`, () =>
        reason === undefined
          ? { kind, status: String(status), source }
          : { kind, status: String(status), source, reason },
      );
      durationOf(kind).observe(r.seconds);
    },
    callers: () => callerTotals(counter.requests, perCall.requestDuration),
    shutdown: async () => {
      stopRuntime();
      register.clear();
    },
  };
}

function laneLabel(lane: Lane | undefined): string {
  return lane ?? 'none';
}
