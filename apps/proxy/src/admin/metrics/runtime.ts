// Node's own metrics (prom-client's default collectors) shaped for promtool and for rate() panels.
import { constants, type PerformanceEntry, PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';

/** perf_hooks' GC kinds: each series exists at 0 before its first collection. */
export const GC_KINDS = ['major', 'minor', 'incremental', 'weakcb'] as const;

/** Registers Node's metrics; returns what stops the one observer they keep (metrics' shutdown). */
export function registerRuntimeMetrics(register: Registry): () => void {
  const registers = [register];
  // Runtime: CPU, memory, heap spaces, GC durations, event-loop delay (perf_hooks), handles.
  collectDefaultMetrics({ register });
  // Gauges named like counters (promtool check metrics refuses them); the same numbers stay by type
  // in nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    register.removeSingleMetric(name);
  // GC kinds as perf_hooks names them: at 0 until the first collection of each kind.
  const gc = register.getSingleMetric('nodejs_gc_duration_seconds');
  if (gc instanceof Histogram) for (const kind of GC_KINDS) gc.zero({ kind });
  // The heap right after the last full collection: the live set, without the garbage a scrape
  // between collections would count (nodejs_heap_size_used_bytes). Its trend over hours is the
  // leak signal a soak reads; 0 until the first full collection.
  const afterGc = new Gauge({
    name: 'nodejs_heap_used_after_major_gc_bytes',
    help: 'V8 heap in use right after the last major (mark-sweep-compact) garbage collection',
    registers,
  });
  afterGc.set(0);
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some(isMajorGc)) afterGc.set(getHeapStatistics().used_heap_size);
  });
  observer.observe({ entryTypes: ['gc'] });
  // Event-loop utilisation as a counter of busy seconds: rate() of it is the utilisation (0–1)
  // over any range, where a ratio gauge would depend on when the last scrape happened.
  let elu = performance.eventLoopUtilization();
  new Counter({
    name: 'nodejs_eventloop_active_seconds_total',
    help: 'Time the event loop was busy (rate() is the event-loop utilisation)',
    registers,
    collect() {
      const now = performance.eventLoopUtilization();
      this.inc(performance.eventLoopUtilization(now, elu).active / 1000);
      elu = now;
    },
  });
  return () => observer.disconnect();
}

function isMajorGc(entry: PerformanceEntry): boolean {
  const { detail } = entry as PerformanceEntry & { readonly detail?: { readonly kind?: number } };
  return detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
}
