// A group's pause and pace shared by the fleet (SPEC §8d, docs/architecture.md "Fate isolation"): the
// domains tell the limiter of their own group pauses and paces (`onShare`), and take the other
// replicas' (`heard`), by the credential's digest — for a group they hold, or, kept a while in a
// small bounded map, for one that shows up later.

import { describe, expect, it } from 'vitest';
import type { ScopeNotice } from '../ratelimit/limiter.js';
import {
  credentialDigest,
  type DomainOptions,
  FailureDomains,
  GROUP_PACE,
  groupDigest,
  HEARD_MS,
} from './domains.js';

function domains(overrides: Partial<DomainOptions> = {}) {
  const shared: ScopeNotice[] = [];
  const d = new FailureDomains({
    // Five failures open a breaker: a failure makes a group known without opening it.
    breaker: { failures: 5, openMs: 1_000, maxOpenMs: 4_000 },
    maxGroups: 100,
    maxResources: 10,
    suspectMs: 500,
    acceptedMs: 60_000,
    appWideGroups: 3,
    onShare: (notice) => shared.push(notice),
    ...overrides,
  });
  return { d, shared };
}

const notice = (credential: string, pauseMs?: number, paceMs?: number, appId = 'app'): ScopeNotice => ({
  appId,
  group: groupDigest(credential),
  ...(pauseMs === undefined ? {} : { pauseMs }),
  ...(paceMs === undefined ? {} : { paceMs }),
});

describe('groupDigest', () => {
  it('is 32 hex digits of the sha256, of which the display digest is the start', () => {
    expect(groupDigest('Bearer secret')).toMatch(/^[0-9a-f]{32}$/);
    expect(groupDigest('Bearer secret').startsWith(credentialDigest('Bearer secret'))).toBe(true);
    expect(groupDigest('Bearer other')).not.toBe(groupDigest('Bearer secret'));
  });
});

describe('FailureDomains: this replica’s own pauses and paces go to the fleet', () => {
  it('tells a pause in whole milliseconds, whatever float dust the clock left', () => {
    const { d, shared } = domains();
    // performance.now() arithmetic: a 2 s pause measured as 2,000.0000000000002 ms.
    d.pause('app', 'Bearer k1', 1_000.1 + 2_000.0000000000002, 1_000.1);
    expect(shared.at(-1)?.pauseMs).toBe(2_000);
    d.pause('app', 'Bearer k2', 1_000 + 2_500.6, 1_000);
    expect(shared.at(-1)?.pauseMs).toBe(2_501);
  });

  it('shares a pause and the pace it sets, relative to now and by digest, once per change', () => {
    const { d, shared } = domains();
    d.pause('app', 'Bearer k1', 1_300, 1_000);
    expect(shared).toEqual([{ appId: 'app', group: groupDigest('Bearer k1'), pauseMs: 300, paceMs: 300 }]);
    // Nothing changed (a shorter pause, the same pace): nothing told.
    d.pause('app', 'Bearer k1', 1_200, 1_000);
    expect(shared).toHaveLength(1);
    // A longer one: told again, pace and all.
    d.pause('app', 'Bearer k1', 1_800, 1_000);
    expect(shared.at(-1)).toEqual({
      appId: 'app',
      group: groupDigest('Bearer k1'),
      pauseMs: 800,
      paceMs: 800,
    });
    expect(shared).toHaveLength(2);
    // The credential itself never leaves.
    expect(JSON.stringify(shared)).not.toContain('k1');
  });

  it('never echoes what it heard', () => {
    const { d, shared } = domains();
    d.failed('app', 'Bearer k1', 0, 0);
    d.heard(notice('Bearer k1', 500, 200), 10);
    d.heard(notice('Bearer k2', 500, 200), 10);
    expect(d.pausedUntil('app', 'Bearer k2', 20)).toBe(510);
    expect(shared).toEqual([]);
  });
});

describe('FailureDomains: notices heard from the other replicas', () => {
  it('pauses and paces a group it holds, found by digest; the app’s other groups and apps untouched', () => {
    const { d } = domains();
    d.failed('app', 'Bearer k1', 0, 0);
    d.failed('app', 'Bearer k2', 0, 0);
    d.heard(notice('Bearer k1', 500, 200), 100);
    expect(d.pausedUntil('app', 'Bearer k1', 100)).toBe(600);
    expect(d.paceMs('app', 'Bearer k1', 100)).toBe(200);
    expect(d.pausedGroups('app', 100)).toBe(1);
    expect(d.groupsOf('app', 100)).toMatchObject([{ credential: 'Bearer k1', pausedMs: 500, paceMs: 200 }]);
    expect(d.pausedUntil('app', 'Bearer k2', 100)).toBe(0);
    expect(d.pausedUntil('other', 'Bearer k1', 100)).toBe(0);
    // Its pace counts from its calls, as a pace learned here.
    d.sent('app', 'Bearer k1', 700);
    expect(d.pausedUntil('app', 'Bearer k1', 700)).toBe(900);
  });

  it('never shortens a pause or a pace, and caps a pace as its own (GROUP_PACE)', () => {
    const { d } = domains();
    d.pause('app', 'Bearer k1', 1_000, 0);
    d.heard(notice('Bearer k1', 100, 50), 0);
    expect([d.pausedUntil('app', 'Bearer k1', 0), d.paceMs('app', 'Bearer k1', 0)]).toEqual([1_000, 1_000]);
    d.heard(notice('Bearer k2', 100, 60_000), 0);
    expect(d.paceMs('app', 'Bearer k2', 0)).toBe(GROUP_PACE.maxMs);
    d.heard(notice('Bearer k3', 100, GROUP_PACE.minMs / 2), 0);
    expect(d.paceMs('app', 'Bearer k3', 0)).toBe(0);
  });

  it('keeps a notice for a group it does not hold, and applies it when the group shows up', () => {
    const { d } = domains();
    d.heard(notice('Bearer k1', 1_000, 300), 100);
    expect(d.size.groups).toBe(0);
    // Same digest, another app: not that group.
    expect(d.pausedUntil('other', 'Bearer k1', 200)).toBe(0);
    // The group's first op: paused to the notice's end, paced.
    expect(d.pausedUntil('app', 'Bearer k1', 200)).toBe(1_100);
    expect(d.paceMs('app', 'Bearer k1', 200)).toBe(300);
    expect(d.pausedGroups('app', 200)).toBe(1);
    expect(d.size.groups).toBe(1);
    // Applied once: a second notice now finds the group itself.
    d.heard(notice('Bearer k1', 2_000), 300);
    expect(d.pausedUntil('app', 'Bearer k1', 300)).toBe(2_300);
  });

  it('applies a kept notice to a group its own 429 or failure makes, and tells the fleet only its own', () => {
    const { d, shared } = domains();
    d.heard(notice('Bearer k1', 1_000, 400), 0);
    d.heard(notice('Bearer k2', 1_000), 0);
    // A shorter 429 of its own: the notice's longer pause and pace stand; nothing new to tell.
    d.pause('app', 'Bearer k1', 300, 0);
    expect([d.pausedUntil('app', 'Bearer k1', 0), d.paceMs('app', 'Bearer k1', 0)]).toEqual([1_000, 400]);
    expect(shared).toEqual([]);
    d.failed('app', 'Bearer k2', 10, 0);
    expect(d.pausedUntil('app', 'Bearer k2', 10)).toBe(1_000);
    // Each applied once: the groups hold them now.
    expect(d.size.groups).toBe(2);
  });

  it('merges notices for a group not held yet: the later end, the longer pace', () => {
    const { d } = domains();
    d.heard(notice('Bearer k1', 1_000), 0);
    d.heard(notice('Bearer k1', 200, 400), 100);
    expect([d.pausedUntil('app', 'Bearer k1', 100), d.paceMs('app', 'Bearer k1', 100)]).toEqual([1_000, 400]);
  });

  it('forgets a kept notice once its pause has ended and HEARD_MS has passed', () => {
    const { d } = domains();
    d.heard(notice('Bearer k1', 100), 0);
    d.heard(notice('Bearer k2', 60_000), 0);
    d.heard(notice('Bearer k3', undefined, 500), 0);
    expect(d.pausedUntil('app', 'Bearer k1', HEARD_MS + 1)).toBe(0);
    expect(d.paceMs('app', 'Bearer k3', HEARD_MS + 1)).toBe(0);
    // A pause longer than HEARD_MS is kept to its end.
    expect(d.pausedUntil('app', 'Bearer k2', 59_999)).toBe(60_000);
    d.heard(notice('Bearer k4', 100), 100_000);
    d.sweep(100_000 + HEARD_MS);
    expect(d.pausedUntil('app', 'Bearer k4', 100_000 + HEARD_MS)).toBe(0);
    expect(d.size.groups).toBe(0);
  });

  it('keeps at most maxHeard notices for groups it does not hold, the oldest going first', () => {
    const { d } = domains({ maxHeard: 2 });
    d.heard(notice('Bearer k1', 1_000), 0);
    d.heard(notice('Bearer k2', 1_000), 1);
    d.heard(notice('Bearer k3', 1_000), 2);
    expect(d.pausedUntil('app', 'Bearer k1', 10)).toBe(0);
    expect(d.pausedUntil('app', 'Bearer k2', 10)).toBe(1_001);
    expect(d.pausedUntil('app', 'Bearer k3', 10)).toBe(1_002);
  });

  it('finds a group by digest no longer once it is forgotten (the bound, or worth nothing)', () => {
    const { d } = domains({ maxGroups: 1 });
    d.failed('app', 'Bearer k1', 0, 0);
    d.failed('app', 'Bearer k2', 0, 0); // evicts k1
    d.heard(notice('Bearer k1', 500), 10);
    expect(d.size.groups).toBe(1);
    expect(d.pausedUntil('app', 'Bearer k1', 10)).toBe(510);
    // k1 held again (k2 evicted); worth nothing once its pause is over, and swept.
    d.sweep(600);
    expect(d.size.groups).toBe(0);
    d.heard(notice('Bearer k1', 500, 100), 700);
    expect(d.size.groups).toBe(0);
    expect(d.pausedUntil('app', 'Bearer k1', 700)).toBe(1_200);
  });
});
