import { describe, expect, it } from 'vitest';
import { credentialDigest, type DomainOptions, FailureDomains, GROUP_PACE } from './domains.js';

const BREAKER = { failures: 1, openMs: 1_000, maxOpenMs: 4_000 };

/** Domains with small bounds; `onCircuit` records the breakers' changes in `events` unless `listen` is false. */
function domains(
  appWideGroups = 2,
  breaker = BREAKER,
  overrides: Partial<DomainOptions> = {},
  listen = true,
) {
  const events: Array<{ appId: string; group: string; state: string }> = [];
  const d = new FailureDomains({
    breaker,
    maxGroups: 100,
    maxResources: 2,
    suspectMs: 500,
    acceptedMs: 60_000,
    appWideGroups,
    ...(listen ? { onCircuit: (e) => events.push(e) } : {}),
    ...overrides,
  });
  return { d, events };
}

describe('FailureDomains', () => {
  it('opens one group without touching its app’s other groups until appWideGroups are open', () => {
    const { d, events } = domains(2);
    d.failed('app', 'k1', 10, 0);
    expect(events).toEqual([{ appId: 'app', group: credentialDigest('k1'), state: 'open' }]);
    expect(d.refusalMs('app', 'k1', 10)).toBe(1_000);
    expect(d.refusalMs('app', 'k2', 10)).toBe(0);
    expect(d.worstState('app', 10)).toBe('open');
    d.failed('app', 'k2', 20, 0);
    // Two open: the app refuses every group, a new one too, until the first reopens.
    expect(d.refusalMs('app', 'k3', 20)).toBe(990);
    expect(d.refusalMs('other', 'k3', 20)).toBe(0);
    // Half-open groups probe for themselves and do not count.
    expect(d.appWideMs('app', 1_010)).toBe(0);
    expect(d.worstState('app', 1_010)).toBe('open');
    expect(d.worstState('app', 1_020)).toBe('half-open');
    expect(d.openGroups('app')).toBe(2);
    const probe = d.mayCall('app', 'k1', 1_010);
    expect(probe).toBeDefined();
    expect(d.mayCall('app', 'k1', 1_010)).toBeUndefined();
    probe?.succeeded(1_020, true);
    expect(d.openGroups('app')).toBe(1);
    expect(d.size.groups).toBe(1);
    // The app's last open group closes: nothing is kept for the app.
    d.mayCall('app', 'k2', 1_020)?.succeeded(1_030, true);
    expect(d.size).toEqual({ groups: 0, resources: 0, apps: 0 });
  });

  it('refuses a known but closed group while the app is open as a whole; a half-open one may probe', () => {
    const { d } = domains(2, { failures: 2, openMs: 1_000, maxOpenMs: 4_000 });
    d.failed('app', 'k4', 0, 0); // one failure: known, still closed
    for (const [k, at] of [
      ['k1', 0],
      ['k2', 500],
      ['k3', 500],
    ] as const) {
      d.failed('app', k, at, at);
      d.failed('app', k, at + 1, at + 1);
    }
    expect(d.refusalMs('app', 'k4', 600)).toBe(401);
    // At 1 001 k1 is half-open: its own probe goes though the app is open (k2 and k3 are).
    expect(d.refusalMs('app', 'k1', 1_001)).toBe(0);
    expect(d.refusalMs('app', 'k4', 1_001)).toBe(500);
  });

  it('tells whether a half-open group may send without taking its probe; a released probe may go again', () => {
    const { d } = domains();
    d.failed('app', 'k1', 0, 0);
    expect(d.canCall('app', 'k1', 500)).toBe(false);
    expect(d.canCall('app', 'k1', 1_000)).toBe(true);
    const probe = d.mayCall('app', 'k1', 1_000);
    expect(probe).toBeDefined();
    expect(d.canCall('app', 'k1', 1_000)).toBe(false);
    probe?.release(1_000);
    expect(d.canCall('app', 'k1', 1_000)).toBe(true);
    expect(d.canCall('app', 'unknown', 0)).toBe(true);
    expect(d.mayCall('app', 'unknown', 0)).toBeDefined();
  });

  it('counts only the first end of a group call: a release after its failure frees no probe', () => {
    const { d } = domains();
    d.failed('app', 'k1', 0, 0);
    const probe = d.mayCall('app', 'k1', 1_000);
    probe?.failed(1_010, 1_000);
    expect(d.worstState('app', 1_010)).toBe('open');
    probe?.release(1_020, 1_000);
    probe?.succeeded(1_030, true);
    // Failed probe: open for twice as long, and neither the release nor the success counted.
    expect(d.worstState('app', 1_030)).toBe('open');
    expect(d.canCall('app', 'k1', 3_009)).toBe(false);
    const next = d.mayCall('app', 'k1', 3_010);
    expect(next).toBeDefined();
    next?.release(3_010, 3_010);
    next?.failed(3_020, 3_010);
    // Released first: the failure after it was not counted, the probe may go again.
    expect(d.canCall('app', 'k1', 3_020)).toBe(true);
  });

  it('remembers a group at least a minute idle, and twice the longest open time when that is longer', () => {
    const short = domains().d;
    short.pause('app', 'k1', 10, 0);
    short.failed('app', 'k2', 0, 0);
    short.sweep(59_999);
    expect(short.size.groups).toBe(1);
    short.sweep(60_000);
    expect(short.size.groups).toBe(0);
    const long = domains(2, { failures: 1, openMs: 1_000, maxOpenMs: 100_000 }).d;
    long.failed('app', 'k2', 0, 0);
    long.sweep(199_999);
    expect(long.size.groups).toBe(1);
    long.sweep(200_000);
    expect(long.size.groups).toBe(0);
  });

  it('works without an onCircuit listener', () => {
    const { d } = domains(2, BREAKER, { maxGroups: 10, maxResources: 10, suspectMs: 100 }, false);
    d.failed('app', 'k1', 0, 0);
    expect(d.worstState('app', 0)).toBe('open');
  });

  it('pauses a group alone and counts the app’s paused groups', () => {
    const { d } = domains();
    d.pause('app', 'k1', 500, 0);
    d.pause('app', 'k1', 300, 0);
    expect(d.pausedUntil('app', 'k1', 100)).toBe(500);
    expect(d.pausedUntil('app', 'k2', 100)).toBe(0);
    d.pause('app', 'k2', 200, 0);
    expect([d.pausedGroups('app', 100), d.pausedGroups('app', 250), d.pausedGroups('other', 100)]).toEqual([
      2, 1, 0,
    ]);
    // A pause ends at its instant.
    expect(d.pausedGroups('app', 200)).toBe(1);
    // A pause longer than a group's idle time (a RETRY_AFTER_MAX_MS of minutes) is kept to its end.
    d.pause('app', 'k9', 300_000, 1_000);
    d.sweep(200_000);
    expect(d.pausedUntil('app', 'k9', 299_999)).toBe(300_000);
    expect(d.size.apps).toBe(1);
    // Once every pause has ended, a sweep leaves nothing of the app.
    d.sweep(300_000);
    expect(d.size).toEqual({ groups: 0, resources: 0, apps: 0 });
  });

  it('forgets a paused group the bound evicted, in the count of paused groups too', () => {
    const { d } = domains(3, BREAKER, { maxGroups: 2, maxResources: 10, suspectMs: 100 });
    d.pause('app', 'k1', 10_000, 0);
    d.pause('app', 'k2', 10_000, 1);
    d.pause('other', 'k3', 10_000, 2);
    expect([d.pausedGroups('app', 3), d.pausedGroups('other', 3)]).toEqual([1, 1]);
    expect(d.pausedUntil('app', 'k1', 3)).toBe(0);
  });

  it('keeps a suspect resource for suspectMs, at most maxResources, until cleared', () => {
    const { d } = domains();
    d.suspect('app', '/users/a', 0);
    expect(d.isSuspect('app', '/users/a', 499)).toBe(true);
    expect(d.isSuspect('app', '/users/a', 500)).toBe(false);
    d.suspect('app', '/users/b', 600);
    d.suspect('app', '/users/c', 600);
    d.suspect('app', '/users/d', 600);
    expect(d.size.resources).toBe(2);
    expect(d.isSuspect('app', '/users/b', 600)).toBe(false);
    d.cleared('app', '/users/c');
    expect(d.isSuspect('app', '/users/c', 600)).toBe(false);
    expect(d.isSuspect('other', '/users/d', 600)).toBe(false);
  });

  it('sweeps a group back to nothing once it is worth nothing, and an idle one with its open breaker', () => {
    const { d } = domains(1);
    d.pause('app', 'k1', 100, 0);
    d.sweep(50);
    expect(d.size.groups).toBe(1);
    d.sweep(100);
    expect(d.size.groups).toBe(0);
    d.failed('app', 'k2', 0, 0);
    expect(d.appWideMs('app', 0)).toBe(1_000);
    // Idle past max(60 s, 2 × maxOpenMs): forgotten, and the app no longer counts it open.
    d.sweep(60_000);
    expect([d.size.groups, d.openGroups('app'), d.appWideMs('app', 60_000)]).toEqual([0, 0, 0]);
  });

  it('remembers an accepted credential per app for acceptedMs after its last acceptance, at most maxGroups', () => {
    const { d } = domains(3, BREAKER, { maxGroups: 2, maxResources: 10, suspectMs: 100, acceptedMs: 1_000 });
    d.accepted('app', 'k1', 0);
    expect([d.isAccepted('app', 'k1', 999), d.isAccepted('other', 'k1', 0)]).toEqual([true, false]);
    d.accepted('app', 'k1', 500);
    expect(d.isAccepted('app', 'k1', 1_499)).toBe(true);
    expect(d.isAccepted('app', 'k1', 1_500)).toBe(false);
    d.accepted('app', 'k1', 2_000);
    d.accepted('app', 'k2', 2_000);
    d.accepted('app', 'k3', 2_000);
    expect(['k1', 'k2', 'k3'].map((k) => d.isAccepted('app', k, 2_000))).toEqual([false, true, true]);
    d.sweep(3_000);
    expect(d.isAccepted('app', 'k3', 2_999)).toBe(false);
  });

  it('paces a throttled group on its own: the longest 429 wait (capped), shrunk by answers', () => {
    const { d } = domains();
    d.pause('app', 'k1', 300, 0);
    expect([d.paceMs('app', 'k1', 0), d.pausedUntil('app', 'k1', 0)]).toEqual([300, 300]);
    d.sent('app', 'k1', 300);
    expect(d.pausedUntil('app', 'k1', 300)).toBe(600);
    // A shorter 429 keeps the longer pace; a longer one raises it, up to GROUP_PACE.maxMs.
    d.pause('app', 'k1', 400, 300);
    expect(d.paceMs('app', 'k1', 300)).toBe(300);
    d.pause('app', 'k1', 800, 300);
    expect(d.paceMs('app', 'k1', 300)).toBe(500);
    for (let i = 0; i < 10; i++) d.pause('app', 'k1', 60_000, 1_000);
    expect(d.paceMs('app', 'k1', 1_000)).toBe(GROUP_PACE.maxMs);
    // A usable answer with an op throttled inside is no recovery; one without shrinks the pace.
    d.succeeded('app', 'k1', 1_000, false);
    expect(d.paceMs('app', 'k1', 1_000)).toBe(GROUP_PACE.maxMs);
    d.succeeded('app', 'k1', 1_000);
    expect(d.paceMs('app', 'k1', 1_000)).toBe(GROUP_PACE.maxMs * GROUP_PACE.recovery);
    while (d.paceMs('app', 'k1', 1_000) > 0) d.succeeded('app', 'k1', 1_000);
    // Another group of the app was never paced.
    expect(d.paceMs('app', 'k2', 1_000)).toBe(0);
    // A 429 whose wait is below GROUP_PACE.minMs sets no pace.
    d.pause('app', 'k3', 1_010, 1_000);
    expect(d.paceMs('app', 'k3', 1_000)).toBe(0);
  });
});
