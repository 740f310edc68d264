// Node's own metrics (prom-client's default collectors) shaped for promtool and for rate() panels.
import { performance } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Histogram, type Registry } from 'prom-client';

/** perf_hooks' GC kinds: each series exists at 0 before its first collection. */
export const GC_KINDS = ['major', 'minor', 'incremental', 'weakcb'] as const;

export function registerRuntimeMetrics(register: Registry): void {
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
}
