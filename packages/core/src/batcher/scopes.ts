// Budget scopes (SPEC §8d): where the upstream limits per tenant (Graph: per tenant and
// application), an app's groups spend their tenant's budgets, not the app's — one tenant's traffic
// never spends another's. The tenant is read from the credential's claims, which nobody has
// verified: it keys a budget only once the upstream has accepted that exact credential. Before,
// the credential spends a budget of its own (a forged token claiming a victim's tenant spends,
// pauses and slows nobody but itself). A dialect without scopes keeps one scope: the app's.
//
// Ordering, groups and breakers stay per app (app-state.ts, domains.ts): only the budgets split, so
// a credential moving from its own scope to its tenant's once accepted keeps its order.

import { createHash } from 'node:crypto';
import { BoundedMap } from './bounded-map.js';
import type { Budget, BudgetName } from './budget.js';
import type { LanePass, Lanes } from './lanes.js';
import { type Action, decide, type Flush, type Plan } from './planner.js';

/** The app's own scope: every group of a dialect without scopes, and accepted credentials without claims. */
export const APP_SCOPE = '';

/** Credentials whose claims and digest are remembered, and for how long untouched. */
const KNOWN_CREDENTIALS = 10_000;
const KNOWN_IDLE_MS = 10 * 60_000;

interface CredentialScope {
  /** The tenant scope its claims name (the dialect's `budgetScopeOf`), if any. */
  readonly claimed: string | undefined;
  /** Its own scope until the upstream accepts it. */
  readonly own: string;
}

export interface ScopeOptions {
  /** The tenant scope a credential's (unverified) claims name; absent: the dialect has no scopes. */
  readonly claimsOf: ((credential: string) => string | undefined) | undefined;
  /** The upstream has accepted this exact credential (or the proxy verified it). */
  readonly accepted: (credential: string, now: number) => boolean;
  /** The lanes of a scope, made on first use (their budgets' keys include the scope). */
  readonly make: (scope: string) => Lanes;
  /** A scope's lanes were made or dropped: their budgets hear the limiter's reopen notices. */
  readonly made?: (budgets: readonly Budget[]) => void;
  readonly dropped?: (budgets: readonly Budget[]) => void;
}

export class Scopes {
  /** The app's own scope's lanes (always there). */
  readonly app: Lanes;
  readonly #lanes = new Map<string, Lanes>();
  readonly #known: BoundedMap<string, CredentialScope> | undefined;

  constructor(private readonly options: ScopeOptions) {
    this.app = this.#made(APP_SCOPE);
    this.#known = options.claimsOf ? new BoundedMap(KNOWN_CREDENTIALS, KNOWN_IDLE_MS) : undefined;
  }

  /** Whether groups may spend other budgets than the app's. */
  get split(): boolean {
    return this.#known !== undefined;
  }

  /**
   * The scope a credential's calls spend now: its tenant's once the upstream accepted it (or the
   * app's when its claims name none), its own before.
   */
  scopeOf(credential: string, now: number): string {
    const known = this.#known;
    const claimsOf = this.options.claimsOf;
    if (!known || !claimsOf) return APP_SCOPE;
    // Read without a touch (a plan asks once per group per pass); made again when expired.
    const scope =
      known.peek(credential, now) ??
      known.touch(credential, now, () => ({
        claimed: claimsOf(credential),
        own: `c:${createHash('sha256').update(credential).digest('hex').slice(0, 32)}`,
      }));
    if (!this.options.accepted(credential, now)) return scope.own;
    return scope.claimed === undefined ? APP_SCOPE : `t:${scope.claimed}`;
  }

  /** The lanes a credential's calls use now (made on first use). */
  lanesOf(credential: string, now: number): Lanes {
    if (!this.#known) return this.app;
    const scope = this.scopeOf(credential, now);
    return this.#lanes.get(scope) ?? this.#made(scope);
  }

  budgetOf(name: BudgetName, credential: string | undefined, now: number): Budget | undefined {
    const lanes = credential === undefined ? this.app : this.lanesOf(credential, now);
    return lanes.budget(name);
  }

  all(): IterableIterator<Lanes> {
    return this.#lanes.values();
  }

  /** How many scopes hold budgets now (the app's included). */
  get size(): number {
    return this.#lanes.size;
  }

  /** When some lane is asked again at the earliest. */
  opensAt(): number {
    if (this.#lanes.size === 1) return this.app.opensAt();
    let at = Number.POSITIVE_INFINITY;
    for (const lanes of this.#lanes.values()) at = Math.min(at, lanes.opensAt());
    return at;
  }

  /** Every scope as a fresh app would have it (only the app's own, full and open). */
  isFresh(now: number): boolean {
    for (const lanes of this.#lanes.values()) if (!lanes.isFresh(now)) return false;
    return true;
  }

  /**
   * Forgets the scopes other than the app's that are indistinguishable from new ones (full, open):
   * one made again later starts the same. Bounded by the scopes in use, not by every credential seen.
   */
  sweep(now: number): void {
    this.#known?.sweep(now);
    for (const [scope, lanes] of this.#lanes) {
      if (scope === APP_SCOPE || !lanes.isFresh(now)) continue;
      this.#lanes.delete(scope);
      this.options.dropped?.(budgetsOf(lanes));
    }
  }

  #made(scope: string): Lanes {
    const lanes = this.options.make(scope);
    this.#lanes.set(scope, lanes);
    this.options.made?.(budgetsOf(lanes));
    return lanes;
  }
}

export function budgetsOf(lanes: Lanes): Budget[] {
  return lanes.rest ? [lanes.batch, lanes.rest] : [lanes.batch];
}

/** The app id a scope's bucket keys carry: the app's own, or the app's with the scope after `~`. */
export function scopedAppId(appId: string, scope: string): string {
  return scope === APP_SCOPE ? appId : `${appId}~${scope}`;
}

/**
 * One pump pass over an app's scopes: a LanePass per scope it meets (the budgets it was denied are
 * not asked again in it). With one scope, the app's lanes alone.
 */
export class ScopesPass {
  readonly #passes = new Map<Lanes, LanePass>();

  constructor(private readonly lanesOf: (credential: string) => Lanes) {}

  /** The pass over `lanes`, made on first use. */
  of(lanes: Lanes): LanePass {
    let pass = this.#passes.get(lanes);
    if (!pass) {
      pass = lanes.pass();
      this.#passes.set(lanes, pass);
    }
    return pass;
  }

  /**
   * The first action a flush's lanes allow, flushes in turn order, and its flush's index; a scope
   * found closed is not looked at again for the flushes after (O(flushes) at worst).
   */
  decide(flushes: readonly Flush[], now: number): { action: Action; index: number } {
    let closed: Set<LanePass> | undefined;
    for (let index = 0; index < flushes.length; index++) {
      const flush = flushes[index] as Flush;
      const pass = this.of(this.lanesOf(flush.credential));
      if (closed?.has(pass)) continue;
      const action = decide([flush], pass.view(now));
      if (action.kind !== 'none') return { action, index };
      closed ??= new Set();
      closed.add(pass);
    }
    return { action: { kind: 'none' }, index: flushes.length };
  }

  /** When to look again: the plan's next event, or a closed budget of a scope with a flush opening. */
  wakeAt(planned: Plan, now: number): number {
    let at = planned.wakeAt;
    let seen: Set<LanePass> | undefined;
    for (const flush of planned.flushes) {
      const pass = this.of(this.lanesOf(flush.credential));
      if (seen?.has(pass)) continue;
      seen ??= new Set();
      seen.add(pass);
      at = Math.min(at, pass.wakeAt(planned, now));
    }
    return at;
  }
}
