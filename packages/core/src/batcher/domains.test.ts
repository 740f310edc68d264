import { describe, expect, it } from 'vitest';
import { credentialDigest, FailureDomains } from './domains.js';

function domains(appWideGroups = 2) {
  const events: Array<{ appId: string; group: string; state: string }> = [];
  const d = new FailureDomains({
    breaker: { failures: 1, openMs: 1_000, maxOpenMs: 4_000 },
    maxGroups: 100,
    maxResources: 2,
    suspectMs: 500,
    appWideGroups,
    onCircuit: (e) => events.push(e),
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
    expect(d.mayCall('app', 'k1', 1_010)).toBe(true);
    expect(d.mayCall('app', 'k1', 1_010)).toBe(false);
    d.succeeded('app', 'k1', 1_020);
    expect(d.openGroups('app')).toBe(1);
    expect(d.size.groups).toBe(1);
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
});
