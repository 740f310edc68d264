// The per-resource ordering property the engine's property tests share (engine, scheduler, Graph
// chains): two ops conflict when either writes and one's resource is the other's or an ancestor of
// it; every run of an earlier conflicting op must come before any run of a later one.
import { expect } from 'vitest';
import { pathPrefixes } from './resources.js';

export interface Access {
  readonly id: string | undefined;
  readonly method: string;
  readonly path: string;
}

/** Conflict as ordering sees it; `resourceOf` maps an op to its resource (default: its path). */
export function conflicts<T extends Access>(
  a: T,
  b: T,
  resourceOf: (op: T) => string = (op) => op.path,
): boolean {
  if (a.method === 'GET' && b.method === 'GET') return false;
  const ra = resourceOf(a);
  const rb = resourceOf(b);
  return pathPrefixes(ra).includes(rb) || pathPrefixes(rb).includes(ra);
}

/**
 * Asserts arrival order per resource: for every conflicting pair that both ran (and `mustOrder`
 * holds for, default every pair), the earlier op's last run (index in the upstream's run log) is
 * before the later op's first run.
 */
export function expectArrivalOrder<T extends Access>(
  arrival: readonly T[],
  runs: ReadonlyArray<{ readonly id: string | undefined }>,
  resourceOf?: (op: T) => string,
  mustOrder: (earlier: T, later: T) => boolean = () => true,
): void {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  runs.forEach((run, i) => {
    if (run.id === undefined) return;
    if (!first.has(run.id)) first.set(run.id, i);
    last.set(run.id, i);
  });
  for (let i = 0; i < arrival.length; i++) {
    for (let j = i + 1; j < arrival.length; j++) {
      const a = arrival[i] as T;
      const b = arrival[j] as T;
      if (a.id === undefined || b.id === undefined) continue;
      const la = last.get(a.id);
      const fb = first.get(b.id);
      if (la === undefined || fb === undefined || !conflicts(a, b, resourceOf) || !mustOrder(a, b)) continue;
      expect(la, `${a.method} ${a.path} (${a.id}) before ${b.method} ${b.path} (${b.id})`).toBeLessThan(fb);
    }
  }
}
