// The engine's events counted per one-second tick (and since start), and the ring buffer the ticks
// are kept in. Each hook is a counter update: the engine calls them on its own path.

import type { SchedulerObserver } from '@batch-proxy/core';
import type { BucketName, LaneLabel, ShedCounts } from './types.js';

/** What happened during one sample interval (or since start). */
export interface Tick {
  readonly ops: Record<LaneLabel, number>;
  batches: number;
  batchOps: number;
  singles: number;
  upstream429: number;
  shed: number;
  readonly shedBy: { -readonly [K in keyof ShedCounts]: number };
  /** Upstream calls by `${lane} ${status}`. */
  readonly upstream: Map<string, number>;
}

export function emptyTick(): Tick {
  return {
    ops: { batch: 0, single: 0, none: 0 },
    batches: 0,
    batchOps: 0,
    singles: 0,
    upstream429: 0,
    shed: 0,
    shedBy: { queueFull: 0, deadline: 0, circuitOpen: 0 },
    upstream: new Map(),
  };
}

export function opsOf(t: Tick): number {
  return t.ops.batch + t.ops.single + t.ops.none;
}

/** Counts not kept per tick. */
export interface Totals {
  readonly tick: Tick;
  collapsed: number;
  requeued: number;
  readonly limiterDenials: Record<BucketName, number>;
}

/** An observer counting into `current()` (the open tick) and `totals.tick` alike. */
export function tickObserver(current: () => Tick, totals: Totals): Required<SchedulerObserver> {
  const both = (f: (t: Tick) => void) => {
    f(current());
    f(totals.tick);
  };
  return {
    onFlush: (e) =>
      both((t) => {
        if (e.lane === 'batch') {
          t.batches++;
          t.batchOps += e.size;
        } else t.singles++;
      }),
    onUpstream: (e) =>
      both((t) => {
        const key = `${e.lane} ${e.status}`;
        t.upstream.set(key, (t.upstream.get(key) ?? 0) + 1);
        if (e.status === 429) t.upstream429++;
      }),
    onAnswer: (e) =>
      both((t) => {
        t.ops[e.lane ?? 'none']++;
      }),
    onCollapsed: () => {
      totals.collapsed++;
    },
    onShed: (e) =>
      both((t) => {
        t.shed++;
        if (e.code === 'PROXY_QUEUE_FULL') t.shedBy.queueFull++;
        else if (e.code === 'PROXY_CIRCUIT_OPEN') t.shedBy.circuitOpen++;
        else t.shedBy.deadline++;
      }),
    onLimiter: (e) => {
      if (!e.granted) totals.limiterDenials[e.bucket]++;
    },
    onRequeue: (e) => {
      totals.requeued += e.count;
    },
    // The upstream's figures are kept by the metrics' board (RateHeaderBoard), not per tick.
    onRateHeaders: () => {},
  };
}

/** The ticks of the last minute added up; upstream statuses split by lane, status ascending. */
export function sumTicks(ticks: readonly Tick[]) {
  const ops: Record<LaneLabel, number> = { batch: 0, single: 0, none: 0 };
  const shedBy: { -readonly [K in keyof ShedCounts]: number } = { queueFull: 0, deadline: 0, circuitOpen: 0 };
  const statuses = new Map<string, { status: string; batch: number; single: number }>();
  let batches = 0;
  let batchOps = 0;
  for (const t of ticks) {
    ops.batch += t.ops.batch;
    ops.single += t.ops.single;
    ops.none += t.ops.none;
    shedBy.queueFull += t.shedBy.queueFull;
    shedBy.deadline += t.shedBy.deadline;
    shedBy.circuitOpen += t.shedBy.circuitOpen;
    batches += t.batches;
    batchOps += t.batchOps;
    for (const [key, count] of t.upstream) {
      const [lane, status = ''] = key.split(' ');
      const row = statuses.get(status) ?? { status, batch: 0, single: 0 };
      if (lane === 'batch') row.batch += count;
      else row.single += count;
      statuses.set(status, row);
    }
  }
  const upstreamStatus = [...statuses.values()].sort((x, y) => cmp(x.status, y.status));
  return { ops, shedBy, batches, batchOps, upstreamStatus };
}

/** Fixed-size history, oldest overwritten first. */
export class Ring<T> {
  readonly #items: T[] = [];
  #next = 0;

  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item);
    else this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    if (this.#items.length < this.capacity) return [...this.#items];
    return [...this.#items.slice(this.#next), ...this.#items.slice(0, this.#next)];
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
