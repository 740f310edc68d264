// What the engine remembers per failure domain (SPEC §8d), apart from the apps' queues: each group's
// (app + credential) circuit breaker and throttle pause, and the resources that just failed a batch.
// One group's failures or 429s stop that group only; an app's calls are all refused only when several
// of its groups are open together. A group's pause and pace are the fleet's: this replica's own go
// out through `onShare`, the other replicas' come in through `heard` (by the credential's digest).
// Everything here lives in bounded, expiring maps, so an app is forgotten when idle whatever its
// domains remember, and a wave of credentials or resources costs at most the bound.

import { createHash } from 'node:crypto';
import type { ScopeNotice } from '../ratelimit/limiter.js';
import { BoundedMap } from './bounded-map.js';
import { type BreakerOptions, CircuitBreaker, type CircuitState } from './breaker.js';

export interface DomainOptions {
  readonly breaker: BreakerOptions;
  /** Groups remembered at once (breakers with failures, pauses), over every app. */
  readonly maxGroups: number;
  /** Suspect resources remembered at once, over every app. */
  readonly maxResources: number;
  /** How long a resource that failed a batch rides alone, in ms. */
  readonly suspectMs: number;
  /** How long an idle credential stays accepted (learned) after the upstream's last acceptance, in ms. */
  readonly acceptedMs: number;
  /** Open group breakers that make the whole app refuse its other groups too. */
  readonly appWideGroups: number;
  /** A group's breaker changed state; `group` is a digest of its credential, never the credential. */
  readonly onCircuit?: (e: { appId: string; group: string; state: CircuitState }) => void;
  /**
   * A 429 of this replica's changed a group's pause or pace: tell the other replicas (`Limiter.share`).
   * Never called for what was `heard`.
   */
  readonly onShare?: (notice: ScopeNotice) => void;
  /** Notices heard for groups not held here, kept until the group shows up (default 1,000). */
  readonly maxHeard?: number;
}

export const DEFAULT_DOMAINS: Omit<DomainOptions, 'breaker'> = {
  maxGroups: 10_000,
  maxResources: 10_000,
  suspectMs: 30_000,
  acceptedMs: 10 * 60_000,
  appWideGroups: 3,
};

/**
 * A throttled group's own pace (SPEC §8d, adaptive pacing learns per scope): after its pause, its
 * calls leave at least `intervalMs` apart — the longest 429 wait it has seen, at most `maxMs`, shrunk
 * by `recovery` at each usable answer with no op throttled, dropped below `minMs`. The app's bucket,
 * and so every other group and replica, keeps its rate. Not doubled by further 429s: a throttle
 * shared by the app (several users behind one limit) would push every user's pace up together and
 * past their deadlines, where the pauses alone already hold them back.
 */
export const GROUP_PACE = { maxMs: 1_000, recovery: 0.8, minMs: 20 } as const;

/**
 * How long a notice heard for a group this replica does not hold is kept for it (past its pause's
 * end): the group's next op may be on its way to this replica. A pace older than this is stale.
 */
export const HEARD_MS = 10_000;

/** What the domains hold for one group (`groupsOf`). */
export interface GroupFateView {
  readonly credential: string;
  readonly circuit: CircuitState;
  /** How long it sends nothing more (its pause, or its pace since its last call), in ms. */
  readonly pausedMs: number;
  /** Its own pace after a throttle, in ms between calls (0: none). */
  readonly paceMs: number;
}

class GroupFate {
  pausedUntil = 0;
  /** `groupDigest` of its credential, computed once: how other replicas' notices name it. */
  readonly digest: string;
  /** The group's own spacing between calls, in ms (0: none); see GROUP_PACE. */
  intervalMs = 0;
  lastSentAt = Number.NEGATIVE_INFINITY;
  readonly breaker: CircuitBreaker;

  constructor(
    readonly appId: string,
    readonly credential: string,
    options: BreakerOptions,
    changed: (fate: GroupFate, state: CircuitState) => void,
  ) {
    this.digest = groupDigest(credential);
    this.breaker = new CircuitBreaker(options, (state) => changed(this, state));
  }

  /** Worth nothing: a fresh group would behave the same. */
  isFresh(now: number): boolean {
    // A pace is worth keeping while the group sends within it; idle longer, it starts afresh.
    return this.breaker.isFresh && this.pausedUntil <= now && this.lastSentAt + this.intervalMs <= now;
  }
}

const key = (appId: string, part: string) => `${appId}\n${part}`;

/** A short digest naming a credential in logs and metrics without revealing it. */
export function credentialDigest(credential: string): string {
  return createHash('sha256').update(credential).digest('hex').slice(0, 12);
}

/**
 * The digest naming a group's credential between replicas (`ScopeNotice.group`): 128 bits of its
 * sha256, so two credentials never share one; `credentialDigest` is its start.
 */
export function groupDigest(credential: string): string {
  return createHash('sha256').update(credential).digest('hex').slice(0, 32);
}

/** A notice heard for a group not held here: until when it is paused, its pace (ms). */
interface Heard {
  pausedUntil: number;
  paceMs: number;
}

export class FailureDomains {
  readonly #groups: BoundedMap<string, GroupFate>;
  readonly #suspects: BoundedMap<string, true>;
  /** Credentials the upstream has accepted (answered a call of theirs without refusing it), per app. */
  readonly #accepted: BoundedMap<string, true>;
  /** Per app, its groups whose breaker opened (some may have turned half-open since). */
  readonly #open = new Map<string, Set<GroupFate>>();
  /** Per app, its groups paused (some pauses may have ended since): a 429 counts them cheaply. */
  readonly #paused = new Map<string, Set<GroupFate>>();
  /** The groups held, by app and digest (the same entries as `#groups`): where a notice lands. */
  readonly #byDigest = new Map<string, GroupFate>();
  /** Notices heard for groups not held, by app and digest, until the group shows up. */
  readonly #heard: BoundedMap<string, Heard>;
  /** Per app, how many notices `#heard` keeps: only its apps' new groups are looked up there. */
  readonly #heardApps = new Map<string, number>();
  /** Credential digests of groups not held, while notices for their app are kept (not once per call). */
  readonly #digests: BoundedMap<string, string>;

  constructor(private readonly options: DomainOptions) {
    // An idle group is forgotten after its longest open time: by then it would be probed anyway.
    const idleMs = Math.max(60_000, options.breaker.maxOpenMs * 2);
    this.#groups = new BoundedMap(options.maxGroups, idleMs, (_, fate) => {
      this.#closed(fate);
      this.#paused.get(fate.appId)?.delete(fate);
      this.#unindexed(fate);
    });
    this.#suspects = new BoundedMap(options.maxResources, options.suspectMs);
    this.#accepted = new BoundedMap(options.maxGroups, options.acceptedMs);
    const maxHeard = options.maxHeard ?? 1_000;
    this.#heard = new BoundedMap(maxHeard, HEARD_MS, (k) => this.#unheard(k));
    this.#digests = new BoundedMap(maxHeard, HEARD_MS);
  }

  get appWideGroups(): number {
    return this.options.appWideGroups;
  }

  /** Groups, resources and apps with an open or paused group remembered (tests, metrics). */
  get size(): { groups: number; resources: number; apps: number } {
    return {
      groups: this.#groups.size,
      resources: this.#suspects.size,
      apps: countKeys(this.#open, this.#paused),
    };
  }

  /**
   * How long calls of a group are refused at the door, in ms (0: they may queue): its own breaker
   * open; or, with its own breaker closed, the app open as a whole. A half-open group queues: one of
   * its calls probes.
   */
  refusalMs(appId: string, credential: string, now: number): number {
    const own = this.#groups.peek(key(appId, credential), now)?.breaker;
    const state = own?.state(now) ?? 'closed';
    if (own && state === 'open') return own.retryInMs(now);
    if (state === 'half-open') return 0;
    return this.appWideMs(appId, now);
  }

  /** How long the whole app is refused (0: it is not): while `appWideGroups` groups are open together. */
  appWideMs(appId: string, now: number): number {
    const open = this.#open.get(appId);
    if (!open || open.size < this.options.appWideGroups) return 0;
    // Half-open groups do not count: each probes for itself.
    let count = 0;
    let soonest = Number.POSITIVE_INFINITY;
    for (const fate of open) {
      if (fate.breaker.state(now) !== 'open') continue;
      count++;
      soonest = Math.min(soonest, fate.breaker.retryInMs(now));
    }
    return count >= this.options.appWideGroups ? soonest : 0;
  }

  /** Apps with a group whose breaker is open or half-open. */
  openApps(): IterableIterator<string> {
    return this.#open.keys();
  }

  /** Groups of an app whose breaker is open or half-open (status page, metrics). */
  openGroups(appId: string): number {
    return this.#open.get(appId)?.size ?? 0;
  }

  /** The worst state of an app's group breakers: open if one is, else half-open if one is. */
  worstState(appId: string, now: number): CircuitState {
    let worst: CircuitState = 'closed';
    for (const fate of this.#open.get(appId) ?? []) {
      const state = fate.breaker.state(now);
      if (state === 'open') return 'open';
      if (state === 'half-open') worst = 'half-open';
    }
    return worst;
  }

  /** Whether a group may send now, without taking its half-open probe. */
  canCall(appId: string, credential: string, now: number): boolean {
    const fate = this.#groups.peek(key(appId, credential), now);
    return !fate || fate.breaker.canCall(now);
  }

  /**
   * A call of the group, if it may send now: half-open, it holds the one probe until the call ends
   * (`GroupCall`), so whatever path the call takes ends it in one place.
   */
  mayCall(appId: string, credential: string, now: number): GroupCall | undefined {
    const fate = this.#groups.peek(key(appId, credential), now);
    if (fate && !fate.breaker.mayCall(now)) return undefined;
    return new GroupCall(this, appId, credential);
  }

  /** A call of the group ended with nothing learnt; `sentAt`: when it left, if it did. */
  released(appId: string, credential: string, now: number, sentAt?: number): void {
    this.#groups.peek(key(appId, credential), now)?.breaker.released(sentAt);
  }

  /** A call of the group got a usable answer; `recovered`: none of its ops throttled (its pace shrinks). */
  succeeded(appId: string, credential: string, now: number, recovered = true): void {
    const k = key(appId, credential);
    const fate = this.#groups.peek(k, now);
    if (!fate) return;
    fate.breaker.succeeded();
    if (recovered && fate.intervalMs > 0) {
      fate.intervalMs *= GROUP_PACE.recovery;
      if (fate.intervalMs < GROUP_PACE.minMs) fate.intervalMs = 0;
    }
    if (fate.isFresh(now)) {
      this.#groups.delete(k);
      this.#unindexed(fate);
    }
  }

  /** A call of the group sent at `sentAt` failed at `now` (breaker.ts: calls failing together count once). */
  failed(appId: string, credential: string, now: number, sentAt: number): void {
    this.#group(appId, credential, now).breaker.failed(now, sentAt);
  }

  /**
   * A group throttled until `until` (a 429 on its own credential): it sends nothing before. A pause
   * or pace that changed is told to the fleet (`onShare`: one notice per change).
   */
  pause(appId: string, credential: string, until: number, now: number): void {
    const ms = Math.max(0, until - now);
    // Kept at least until the pause ends, however long the Retry-After (RETRY_AFTER_MAX_MS).
    const fate = this.#group(appId, credential, now, until);
    const before = { pausedUntil: fate.pausedUntil, intervalMs: fate.intervalMs };
    this.#paced(fate, until, ms);
    if (fate.pausedUntil === before.pausedUntil && fate.intervalMs === before.intervalMs) return;
    this.options.onShare?.({
      appId,
      group: fate.digest,
      // Whole ms on the wire: clock arithmetic leaves float dust (2,000.0000000000002).
      pauseMs: Math.max(0, Math.round(fate.pausedUntil - now)),
      paceMs: fate.intervalMs,
    });
  }

  /**
   * Another replica's notice (`Limiter.onShared`): the group with that digest pauses and paces as
   * if the 429 were this replica's — never shorter than it already does, and told to nobody. For a
   * group not held here the notice is kept (bounded, HEARD_MS past its pause) until the group shows up.
   */
  heard(notice: ScopeNotice, now: number): void {
    const until = now + Math.max(0, notice.pauseMs ?? 0);
    const paceMs = Math.max(0, notice.paceMs ?? 0);
    const k = key(notice.appId, notice.group);
    const held = this.#byDigest.get(k);
    if (held && this.#groups.peek(key(held.appId, held.credential), now) === held) {
      this.#paced(this.#group(held.appId, held.credential, now, until), until, paceMs);
      return;
    }
    const kept = this.#heard.peek(k, now);
    if (!kept) this.#heardApps.set(notice.appId, (this.#heardApps.get(notice.appId) ?? 0) + 1);
    const entry = this.#heard.touch(k, now, () => ({ pausedUntil: 0, paceMs: 0 }), until);
    entry.pausedUntil = Math.max(entry.pausedUntil, until);
    entry.paceMs = Math.max(entry.paceMs, paceMs);
  }

  /** Until when a group sends nothing: its pause, or its own pace since its last call. */
  pausedUntil(appId: string, credential: string, now: number): number {
    const fate = this.#fate(appId, credential, now);
    if (!fate) return 0;
    return fate.intervalMs === 0
      ? fate.pausedUntil
      : Math.max(fate.pausedUntil, fate.lastSentAt + fate.intervalMs);
  }

  /**
   * The app's groups the domains hold something for — a breaker open or half-open, a pause or a pace
   * in force — with how long each is paused and its pace (status page). O(those groups).
   */
  groupsOf(appId: string, now: number): GroupFateView[] {
    const fates = new Set([...(this.#open.get(appId) ?? []), ...(this.#paused.get(appId) ?? [])]);
    const views: GroupFateView[] = [];
    for (const fate of fates) {
      const pausedMs = Math.max(0, this.pausedUntil(appId, fate.credential, now) - now);
      const circuit = fate.breaker.state(now);
      if (circuit === 'closed' && pausedMs === 0 && fate.intervalMs === 0) continue;
      views.push({ credential: fate.credential, circuit, pausedMs, paceMs: fate.intervalMs });
    }
    return views;
  }

  /** A call of the group left at `now` (its pace counts from there). */
  sent(appId: string, credential: string, now: number): void {
    const fate = this.#fate(appId, credential, now);
    if (fate && fate.intervalMs > 0) fate.lastSentAt = now;
  }

  /** A group's own pace in ms (0: none), for tests and the status page. */
  paceMs(appId: string, credential: string, now: number): number {
    return this.#fate(appId, credential, now)?.intervalMs ?? 0;
  }

  /** Groups of an app paused at `now` (O(its paused groups), not O(every group remembered)). */
  pausedGroups(appId: string, now: number): number {
    const paused = this.#paused.get(appId);
    if (!paused) return 0;
    for (const fate of paused) if (fate.pausedUntil <= now) paused.delete(fate);
    if (paused.size === 0) this.#paused.delete(appId);
    return paused.size;
  }

  /** A resource whose op was in a batch that failed as a whole: it rides alone for a while. */
  suspect(appId: string, resource: string, now: number): void {
    this.#suspects.touch(key(appId, resource), now, () => true);
  }

  isSuspect(appId: string, resource: string, now: number): boolean {
    return this.#suspects.peek(key(appId, resource), now) !== undefined;
  }

  /** The resource's op got a usable answer: it is no longer suspect. */
  cleared(appId: string, resource: string): void {
    this.#suspects.delete(key(appId, resource));
  }

  /**
   * The upstream answered a call carrying exactly this credential without refusing it: what the
   * credential claims may now key shared state (SPEC §8d, budgets per tenant). Until then, and again
   * once forgotten, its ops are ordered among themselves only.
   */
  accepted(appId: string, credential: string, now: number): void {
    this.#accepted.touch(key(appId, credential), now, () => true);
  }

  isAccepted(appId: string, credential: string, now: number): boolean {
    return this.#accepted.peek(key(appId, credential), now) !== undefined;
  }

  sweep(now: number): void {
    this.#groups.sweep(now, (fate) => {
      if (!fate.isFresh(now)) return false;
      this.#closed(fate);
      this.#unindexed(fate);
      return true;
    });
    this.#suspects.sweep(now);
    this.#accepted.sweep(now);
    this.#heard.sweep(now);
    this.#digests.sweep(now);
    for (const appId of [...this.#paused.keys()]) this.pausedGroups(appId, now);
  }

  #group(appId: string, credential: string, now: number, keepUntil = 0): GroupFate {
    return this.#groups.touch(
      key(appId, credential),
      now,
      () => {
        const fate = new GroupFate(appId, credential, this.options.breaker, (changed, state) => {
          if (state === 'open') this.#opened(changed);
          else if (state === 'closed') this.#closed(changed);
          this.options.onCircuit?.({ appId, group: changed.digest.slice(0, 12), state });
        });
        this.#byDigest.set(key(appId, fate.digest), fate);
        this.#adopt(fate, now);
        return fate;
      },
      keepUntil,
    );
  }

  /** A group's pause to `until` and a pace of `paceMs` (capped, GROUP_PACE), never shortening either. */
  #paced(fate: GroupFate, until: number, paceMs: number): void {
    const interval = Math.max(fate.intervalMs, Math.min(paceMs, GROUP_PACE.maxMs));
    fate.intervalMs = interval < GROUP_PACE.minMs ? 0 : interval;
    fate.pausedUntil = Math.max(fate.pausedUntil, until);
    let paused = this.#paused.get(fate.appId);
    if (!paused) {
      paused = new Set();
      this.#paused.set(fate.appId, paused);
    }
    paused.add(fate);
  }

  /**
   * The group held for a credential; for one not held, the notice heard for its digest, if any,
   * applied now (the digest computed only while notices for its app are kept, once per credential).
   */
  #fate(appId: string, credential: string, now: number): GroupFate | undefined {
    const held = this.#groups.peek(key(appId, credential), now);
    if (held || !this.#heardApps.has(appId)) return held;
    const digest = this.#digests.touch(key(appId, credential), now, () => groupDigest(credential));
    const heard = this.#heard.peek(key(appId, digest), now);
    if (!heard) return undefined;
    this.#digests.delete(key(appId, credential));
    // Made now, it takes the notice (#adopt), and is kept at least to the notice's pause end.
    return this.#group(appId, credential, now, heard.pausedUntil);
  }

  /** A group made here takes the notice kept for its digest, if any (however it came to be made). */
  #adopt(fate: GroupFate, now: number): void {
    if (!this.#heardApps.has(fate.appId)) return;
    const k = key(fate.appId, fate.digest);
    const heard = this.#heard.peek(k, now);
    if (!heard) return;
    this.#heard.delete(k);
    this.#unheard(k);
    this.#paced(fate, heard.pausedUntil, heard.paceMs);
  }

  /** A kept notice left `#heard`. */
  #unheard(heardKey: string): void {
    const appId = heardKey.slice(0, heardKey.lastIndexOf('\n'));
    const left = (this.#heardApps.get(appId) ?? 1) - 1;
    if (left > 0) this.#heardApps.set(appId, left);
    else this.#heardApps.delete(appId);
  }

  /** A group is no longer held. */
  #unindexed(fate: GroupFate): void {
    const k = key(fate.appId, fate.digest);
    if (this.#byDigest.get(k) === fate) this.#byDigest.delete(k);
  }

  #opened(fate: GroupFate): void {
    let open = this.#open.get(fate.appId);
    if (!open) {
      open = new Set();
      this.#open.set(fate.appId, open);
    }
    open.add(fate);
  }

  #closed(fate: GroupFate): void {
    const open = this.#open.get(fate.appId);
    if (!open) return;
    open.delete(fate);
    if (open.size === 0) this.#open.delete(fate.appId);
  }
}

/** Keys of `a` and `b` together, without building their union. */
function countKeys(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): number {
  let count = a.size;
  for (const k of b.keys()) if (!a.has(k)) count++;
  return count;
}

/**
 * One call of a group, from the moment it may leave to its end: what it learnt (a usable answer, a
 * failure) or nothing (denied a token, nothing left to send, a 429, a crash). Only its first end
 * counts, so a `finally` may release it whatever came before.
 */
export class GroupCall {
  #ended = false;

  constructor(
    private readonly domains: FailureDomains,
    readonly appId: string,
    readonly credential: string,
  ) {}

  /** A usable answer; `recovered`: none of its ops throttled. */
  succeeded(now: number, recovered: boolean): void {
    if (this.#end()) this.domains.succeeded(this.appId, this.credential, now, recovered);
  }

  /** No usable answer to a call sent at `sentAt`. */
  failed(now: number, sentAt: number): void {
    if (this.#end()) this.domains.failed(this.appId, this.credential, now, sentAt);
  }

  /** Nothing learnt; `sentAt`: when it left, if it did. A half-open breaker's probe goes back. */
  release(now: number, sentAt?: number): void {
    if (this.#end()) this.domains.released(this.appId, this.credential, now, sentAt);
  }

  #end(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    return true;
  }
}
