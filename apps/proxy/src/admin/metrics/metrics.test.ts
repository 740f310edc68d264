import { spawnSync } from 'node:child_process';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PaceBoard } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import { PASS_REASONS } from '../../http/route.js';
import { createMetrics, KNOWN, MAX_APP_SERIES } from './metrics.js';

type App = { appId: string; queued: number; inflight: number };

function seriesOf(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

describe('per-app gauges (SPEC §8c: metric label sets are bounded)', () => {
  it('lists at most MAX_APP_SERIES apps, the busiest, and the rest as one "_other" series', async () => {
    let apps: App[] = Array.from({ length: 1000 }, (_, i) => ({
      appId: `app${i}`,
      queued: i % 7,
      inflight: i === 999 ? 50 : 0,
    }));
    const metrics = createMetrics({ queued: () => apps, redisFallback: () => false });
    const text = await metrics.text();
    const queued = seriesOf(text, 'batch_proxy_queued_ops');
    expect(queued.length).toBeLessThanOrEqual(MAX_APP_SERIES + 1);
    expect(queued.some((l) => l.includes('app="app999"'))).toBe(true);
    const other = queued.find((l) => l.includes('app="_other"'));
    const listedTotal = queued.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    expect(other).toBeDefined();
    expect(listedTotal).toBe(apps.reduce((sum, a) => sum + a.queued, 0));

    // An app gone from the engine (idle, evicted) leaves no series behind.
    apps = [{ appId: 'only', queued: 1, inflight: 0 }];
    const after = await metrics.text();
    expect(seriesOf(after, 'batch_proxy_queued_ops')).toEqual([expect.stringContaining('app="only"')]);
    expect(seriesOf(after, 'batch_proxy_inflight_ops')).toEqual([expect.stringContaining('app="only"')]);
    await metrics.shutdown();
  });

  it('escapes an app id that would break the text format', async () => {
    const metrics = createMetrics({
      queued: () => [{ appId: 'a"b\\c\nd', queued: 1, inflight: 0 }],
      redisFallback: () => false,
    });
    expect(await metrics.text()).toContain('batch_proxy_queued_ops{app="a\\"b\\\\c\\nd"} 1\n');
    await metrics.shutdown();
  });
});

/** One sample's value, by its exact series (name and labels as exported). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('circuit breakers', () => {
  it('counts the apps whose breaker is not closed, 0 from start, and sheds by the open breaker', async () => {
    let apps: Array<{
      appId: string;
      queued: number;
      inflight: number;
      circuit: string;
      openGroups: number;
    }> = [];
    const metrics = createMetrics({ queued: () => apps, redisFallback: () => false });
    const first = await metrics.text();
    expect([
      sample(first, 'batch_proxy_circuit_open_apps'),
      sample(first, 'batch_proxy_circuit_open_groups'),
    ]).toEqual([0, 0]);
    apps = [
      { appId: 'a', queued: 0, inflight: 0, circuit: 'open', openGroups: 2 },
      { appId: 'b', queued: 0, inflight: 0, circuit: 'half-open', openGroups: 1 },
      { appId: 'c', queued: 1, inflight: 0, circuit: 'closed', openGroups: 0 },
    ];
    const text = await metrics.text();
    expect(sample(text, 'batch_proxy_circuit_open_apps')).toBe(2);
    expect(sample(text, 'batch_proxy_circuit_open_groups')).toBe(3);
    expect(text).toMatch(/^batch_proxy_shed_total\{[^}]*code="PROXY_CIRCUIT_OPEN"[^}]*\} 0$/m);
    await metrics.shutdown();
  });
});

describe('exposition by Prometheus conventions (SPEC §10)', () => {
  const none = { queued: () => [], redisFallback: () => false };

  it('passes promtool check metrics, with every kind of series recorded', async () => {
    const board = new PaceBoard();
    board.record({ key: 'u|a1|batch', ratePerSec: 45, adjusted: 'decrease' });
    const metrics = createMetrics({
      queued: () => [{ appId: 'a1', queued: 2, inflight: 1 }],
      redisFallback: () => true,
      pace: () => board.stats(),
      paceMaxRate: 100,
    });
    metrics.observer.onFlush?.({ appId: 'a1', lane: 'batch', size: 3, reason: 'full' });
    metrics.observer.onUpstream?.({ appId: 'a1', lane: 'batch', status: 200, ms: 12 });
    metrics.observer.onAnswer?.({ appId: 'a1', lane: 'batch', status: 200, queueMs: 250 });
    metrics.observer.onLimiter?.({ appId: 'a1', bucket: 'batch', granted: false, waitMs: 900 });
    metrics.request({
      kind: 'passthrough',
      status: 200,
      source: 'upstream',
      reason: 'header',
      seconds: 0.03,
    });
    const text = await metrics.text();
    // promtool (Debian's `prometheus` package) is the reference parser and linter of the format.
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
    await metrics.shutdown();
  });

  it('names the service, puts no scope label on series, and uses base units', async () => {
    const metrics = createMetrics(none);
    metrics.observer.onAnswer?.({ appId: 'a1', lane: 'batch', status: 200, queueMs: 250 });
    const text = await metrics.text();
    expect(text).toMatch(
      /^target_info\{service_name="batch-proxy",service_version="\d+\.\d+\.\d+[^"]*"\} 1$/m,
    );
    expect(text).not.toContain('otel_scope_name');
    expect(text).not.toContain('unknown_service');
    // 250 ms is 0.25 s: inside le="0.5", outside le="0.2".
    expect(sample(text, 'batch_proxy_queue_wait_seconds_sum{lane="batch"}')).toBe(0.25);
    expect(sample(text, 'batch_proxy_queue_wait_seconds_bucket{le="0.2",lane="batch"}')).toBe(0);
    expect(sample(text, 'batch_proxy_queue_wait_seconds_bucket{le="0.5",lane="batch"}')).toBe(1);
    for (const name of [
      'batch_proxy_queue_wait ',
      'batch_proxy_upstream_duration_bucket',
      'batch_proxy_limiter_wait_bucket',
    ])
      expect(text).not.toContain(name);
    await metrics.shutdown();
  });

  it('has every known series at 0 before the first event', async () => {
    const metrics = createMetrics(none);
    const text = await metrics.text();
    for (const code of KNOWN.shedCodes)
      expect(sample(text, `batch_proxy_shed_total{code="${code}"}`)).toBe(0);
    expect(sample(text, 'batch_proxy_collapsed_reads_total')).toBe(0);
    for (const reason of KNOWN.requeueReasons)
      expect(sample(text, `batch_proxy_requeued_ops_total{reason="${reason}"}`)).toBe(0);
    for (const bucket of KNOWN.buckets) {
      expect(sample(text, `batch_proxy_limiter_wait_seconds_count{bucket="${bucket}"}`)).toBe(0);
      for (const result of KNOWN.results)
        expect(
          sample(text, `batch_proxy_limiter_decisions_total{bucket="${bucket}",result="${result}"}`),
        ).toBe(0);
    }
    for (const [lane, reason] of KNOWN.flushes)
      expect(sample(text, `batch_proxy_flushes_total{lane="${lane}",reason="${reason}"}`)).toBe(0);
    for (const lane of KNOWN.answerLanes)
      expect(sample(text, `batch_proxy_ops_total{lane="${lane}"}`)).toBe(0);
    for (const reason of PASS_REASONS)
      expect(sample(text, `batch_proxy_passthrough_total{reason="${reason}"}`)).toBe(0);
    expect(sample(text, 'batch_proxy_redis_fallback')).toBe(0);
    for (const stat of KNOWN.paceStats) expect(sample(text, `batch_proxy_pace_rate{stat="${stat}"}`)).toBe(0);
    expect(sample(text, 'batch_proxy_pace_max_rate')).toBe(0);
    for (const direction of KNOWN.paceDirections)
      expect(sample(text, `batch_proxy_pace_adjustments_total{direction="${direction}"}`)).toBe(0);
    for (const kind of KNOWN.gcKinds)
      expect(sample(text, `nodejs_gc_duration_seconds_count{kind="${kind}"}`)).toBeGreaterThanOrEqual(0);
    await metrics.shutdown();
  });

  it('has a requeue series at 0 for each reason the engine reports, 424 and split included', async () => {
    // Spelled out, not read from KNOWN: a reason left out of KNOWN must fail here.
    const metrics = createMetrics(none);
    const text = await metrics.text();
    expect(seriesOf(text, 'batch_proxy_requeued_ops_total').sort()).toEqual([
      'batch_proxy_requeued_ops_total{reason="424"} 0',
      'batch_proxy_requeued_ops_total{reason="429"} 0',
      'batch_proxy_requeued_ops_total{reason="retry"} 0',
      'batch_proxy_requeued_ops_total{reason="split"} 0',
    ]);
    metrics.observer.onRequeue?.({ appId: 'a', reason: '424', count: 3 });
    expect(sample(await metrics.text(), 'batch_proxy_requeued_ops_total{reason="424"}')).toBe(3);
    await metrics.shutdown();
  });

  it("tells the proxy's own answers from the upstream's, and records the caller's latency", async () => {
    const metrics = createMetrics(none);
    metrics.request({ kind: 'batched', status: 429, source: 'proxy', seconds: 0.001 });
    metrics.request({ kind: 'batched', status: 429, source: 'upstream', seconds: 0.3 });
    metrics.request({ kind: 'passthrough', status: 200, source: 'upstream', reason: 'query', seconds: 0.02 });
    const text = await metrics.text();
    expect(sample(text, 'batch_proxy_requests_total{kind="batched",status="429",source="proxy"}')).toBe(1);
    expect(sample(text, 'batch_proxy_requests_total{kind="batched",status="429",source="upstream"}')).toBe(1);
    expect(
      sample(
        text,
        'batch_proxy_requests_total{kind="passthrough",status="200",source="upstream",reason="query"}',
      ),
    ).toBe(1);
    expect(sample(text, 'batch_proxy_passthrough_total{reason="query"}')).toBe(1);
    expect(sample(text, 'batch_proxy_request_duration_seconds_count{kind="batched"}')).toBe(2);
    expect(sample(text, 'batch_proxy_request_duration_seconds_bucket{le="0.002",kind="batched"}')).toBe(1);
    await metrics.shutdown();
  });

  it('exports runtime metrics: event-loop delay and utilisation, heap, GC, CPU', async () => {
    const metrics = createMetrics(none);
    const text = await metrics.text();
    for (const name of [
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_eventloop_active_seconds_total',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ])
      expect(text).toContain(`# TYPE ${name} `);
    await metrics.shutdown();
  });
});

describe('adaptive pacing metrics', () => {
  it('shows the learned rates over active buckets, the bound, and the adjustments made here', async () => {
    const board = new PaceBoard();
    const metrics = createMetrics({
      queued: () => [],
      redisFallback: () => false,
      pace: () => board.stats(),
      paceMaxRate: 200,
    });
    let text = await metrics.text();
    expect(sample(text, 'batch_proxy_pace_rate{stat="median"}')).toBe(0);
    expect(sample(text, 'batch_proxy_pace_max_rate')).toBe(200);
    board.record({ key: 'u|a|batch', ratePerSec: 90, adjusted: 'decrease' });
    board.record({ key: 'u|b|batch', ratePerSec: 100, adjusted: undefined });
    board.record({ key: 'u|c|batch', ratePerSec: 120, adjusted: 'increase' });
    board.record({ key: 'u|c|batch', ratePerSec: 122, adjusted: 'increase' });
    text = await metrics.text();
    expect(sample(text, 'batch_proxy_pace_rate{stat="min"}')).toBe(90);
    expect(sample(text, 'batch_proxy_pace_rate{stat="median"}')).toBe(100);
    expect(sample(text, 'batch_proxy_pace_rate{stat="max"}')).toBe(122);
    expect(sample(text, 'batch_proxy_pace_adjustments_total{direction="increase"}')).toBe(2);
    expect(sample(text, 'batch_proxy_pace_adjustments_total{direction="decrease"}')).toBe(1);
    // A second scrape counts nothing twice.
    text = await metrics.text();
    expect(sample(text, 'batch_proxy_pace_adjustments_total{direction="increase"}')).toBe(2);
    await metrics.shutdown();
  });
});

describe('per-call counters (tallied between scrapes)', () => {
  it('show every call at every scrape, and keep counting across scrapes', async () => {
    const metrics = createMetrics({ queued: () => [], redisFallback: () => false });
    const line = (text: string, series: string) =>
      text.split('\n').find((l) => l.startsWith(`${series} `)) ?? `${series} (absent)`;
    const ok = { kind: 'batched', status: 200, source: 'upstream', seconds: 0.01 } as const;
    const passed = {
      kind: 'passthrough',
      status: 404,
      source: 'upstream',
      reason: 'header',
      seconds: 0.01,
    } as const;
    for (let i = 0; i < 3; i++) metrics.request(ok);
    metrics.request(passed);
    metrics.observer.onAnswer?.({ appId: 'a', lane: 'batch', status: 200, queueMs: 3 });
    let text = await metrics.text();
    expect(line(text, 'batch_proxy_requests_total{kind="batched",status="200",source="upstream"}')).toMatch(
      / 3$/,
    );
    expect(
      line(
        text,
        'batch_proxy_requests_total{kind="passthrough",status="404",source="upstream",reason="header"}',
      ),
    ).toMatch(/ 1$/);
    expect(line(text, 'batch_proxy_passthrough_total{reason="header"}')).toMatch(/ 1$/);
    expect(line(text, 'batch_proxy_ops_total{lane="batch"}')).toMatch(/ 1$/);
    metrics.request(ok);
    metrics.request(ok);
    text = await metrics.text();
    expect(line(text, 'batch_proxy_requests_total{kind="batched",status="200",source="upstream"}')).toMatch(
      / 5$/,
    );
    text = await metrics.text();
    expect(line(text, 'batch_proxy_requests_total{kind="batched",status="200",source="upstream"}')).toMatch(
      / 5$/,
    );
    expect(line(text, 'batch_proxy_passthrough_total{reason="header"}')).toMatch(/ 1$/);
    await metrics.shutdown();
  });
});

describe('the heap after a full collection', () => {
  it('reads the live heap after each major GC, not the garbage between collections', async () => {
    // A full collection on demand, without --expose-gc on the test process.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const metrics = createMetrics({ queued: () => [], redisFallback: () => false });
    let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    garbage = undefined;
    gc();
    // Observers hear of a collection after it, on a later turn.
    let after = 0;
    for (let turn = 0; turn < 100 && after === 0; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      after = sample(await metrics.text(), 'nodejs_heap_used_after_major_gc_bytes') ?? 0;
    }
    expect(garbage).toBeUndefined();
    expect(after).toBeGreaterThan(1_000_000);
    // The garbage went: the live heap is well under the heap at its peak.
    expect(after).toBeLessThan(getHeapStatistics().total_heap_size);
    await metrics.shutdown();
  });
});
