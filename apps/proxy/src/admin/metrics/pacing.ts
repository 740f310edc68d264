// The adaptive pacer's series (PACING=adaptive; at 0 with fixed rates).
import type { PaceStats } from '@batch-proxy/core';
import { Counter, Gauge, type Registry } from 'prom-client';

export const PACE_STATS = ['min', 'median', 'max'] as const;
export const PACE_DIRECTIONS = ['increase', 'decrease'] as const;

export interface PacingSource {
  /** PACING=adaptive: the learned rates (undefined: fixed rates, the pace series stay at 0). */
  readonly pace?: (() => PaceStats) | undefined;
  /** PACING=adaptive: PACE_MAX_RATE_PER_SEC. */
  readonly paceMaxRate?: number | undefined;
}

export function registerPacing(registers: Registry[], gauges: PacingSource): void {
  // Adaptive pacing (docs/graph-dialect.md §3): the learned rates over the active paced buckets, the
  // operator's bound, and the adjustments this replica's calls made (each is made by one replica, so
  // the fleet's sum counts each once). No per-app label: the stats keep the series bounded.
  new Gauge({
    name: 'batch_proxy_pace_rate',
    help: 'Learned rate of the paced buckets active in the last 10 minutes, batch calls per second, by stat',
    labelNames: ['stat'],
    registers,
    collect() {
      const stats = gauges.pace?.();
      for (const stat of PACE_STATS) this.set({ stat }, stats?.[stat] ?? 0);
    },
  });
  new Gauge({
    name: 'batch_proxy_pace_max_rate',
    help: 'The bound of the learned rate (PACE_MAX_RATE_PER_SEC), batch calls per second; 0 when pacing is fixed',
    registers,
    collect() {
      this.set(gauges.paceMaxRate ?? 0);
    },
  });
  const paceCounted = { increase: 0, decrease: 0 };
  const paceAdjustments = new Counter({
    name: 'batch_proxy_pace_adjustments_total',
    help: 'Changes of a learned rate made by this replica, by direction',
    labelNames: ['direction'],
    registers,
    collect() {
      const stats = gauges.pace?.();
      if (stats === undefined) return;
      const now = { increase: stats.increases, decrease: stats.decreases };
      for (const direction of PACE_DIRECTIONS) {
        paceAdjustments.inc({ direction }, now[direction] - paceCounted[direction]);
        paceCounted[direction] = now[direction];
      }
    },
  });
  for (const direction of PACE_DIRECTIONS) paceAdjustments.inc({ direction }, 0);
}
