// Per-app series, bounded: the busiest apps by name, the rest summed (SPEC §8c: label sets must not
// grow with every appId ever seen).
import { Gauge, type Registry } from 'prom-client';

/** Apps with a series of their own; the others are summed into one `app="_other"` series. */
export const MAX_APP_SERIES = 50;

export interface AppGauge {
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

/** Declares the per-app gauges; the returned function refreshes them from the engine's snapshot. */
export function appSeries(registers: Registry[], queued: () => readonly AppGauge[]): () => void {
  // Per-app gauges from the engine's snapshot at scrape time, reset first: an app the engine has
  // freed leaves no series behind (SPEC §8c).
  const queuedOps = new Gauge({
    name: 'batch_proxy_queued_ops',
    help: 'Ops waiting in the queue',
    labelNames: ['app'],
    registers,
  });
  const inflightOps = new Gauge({
    name: 'batch_proxy_inflight_ops',
    help: 'Ops in upstream calls not yet answered',
    labelNames: ['app'],
    registers,
  });
  return () => {
    queuedOps.reset();
    inflightOps.reset();
    for (const a of boundedApps(queued())) {
      queuedOps.set({ app: a.appId }, a.queued);
      inflightOps.set({ app: a.appId }, a.inflight);
    }
  };
}
