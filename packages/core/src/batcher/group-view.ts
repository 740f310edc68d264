// What the status page shows of an app's groups (SPEC §8d: pauses, breakers and learned paces per
// scope, bounded): its busiest groups by queued ops, then by pause, each named by a digest of its
// credential, and the others summed as one `_other` row.

import type { AppState } from './app-state.js';
import type { CircuitState } from './breaker.js';
import { credentialDigest, type FailureDomains } from './domains.js';

/** One group: named by a digest of its credential, never the credential. */
export interface GroupView {
  readonly group: string;
  readonly queued: number;
  readonly circuit: CircuitState;
  /** How long it sends nothing more (its pause, or its pace since its last call), in ms. */
  readonly pausedMs: number;
  /** Its own pace after a throttle, in ms between calls (0: none). */
  readonly paceMs: number;
}

/** An app's busiest groups, and the others summed (`_other`). */
export interface GroupsView {
  readonly busiest: GroupView[];
  readonly other: { readonly groups: number; readonly queued: number };
}

/**
 * At most `limit` groups of `appId`: those with ops queued (`state`, absent for an app the engine
 * has forgotten) and those the domains hold a breaker, pause or pace for. O(queued ops + held groups).
 */
export function groupsView(
  appId: string,
  state: AppState | undefined,
  domains: FailureDomains,
  now: number,
  limit: number,
): GroupsView {
  const queued = new Map<string, number>();
  for (const op of state?.queuedOps() ?? []) queued.set(op.credential, (queued.get(op.credential) ?? 0) + 1);
  const held = new Map(domains.groupsOf(appId, now).map((v) => [v.credential, v]));
  const all: GroupView[] = [];
  for (const credential of new Set([...queued.keys(), ...held.keys()])) {
    const fate = held.get(credential);
    all.push({
      group: credentialDigest(credential),
      queued: queued.get(credential) ?? 0,
      circuit: fate?.circuit ?? 'closed',
      pausedMs: fate?.pausedMs ?? 0,
      paceMs: fate?.paceMs ?? 0,
    });
  }
  all.sort((a, b) => b.queued - a.queued || b.pausedMs - a.pausedMs || (a.group < b.group ? -1 : 1));
  const rest = all.slice(limit);
  return {
    busiest: all.slice(0, limit),
    other: { groups: rest.length, queued: rest.reduce((n, g) => n + g.queued, 0) },
  };
}
