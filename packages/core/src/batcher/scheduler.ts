// The engine's facade: holds each caller's op for a short window, packs ops that may travel together
// into upstream batch calls, spends the two upstream budgets (batch calls and single calls, SPEC §7b)
// and answers every caller exactly once. One AppEngine per app does the work (app-engine.ts); this
// keeps the apps, admits callers, and drains.

import type { ProxyError } from '../errors.js';
import { type Admitted, admit } from './admission.js';
import { callerGone } from './answer.js';
import { AppEngine, type AppSnapshot } from './app-engine.js';
import type { Budget, BudgetName } from './budget.js';
import type { Timer } from './clock.js';
import {
  callerWaitMs,
  resolve,
  type SchedulerConfig,
  type SchedulerOptions,
  type Submission,
} from './config.js';
import { DEFAULT_DOMAINS, FailureDomains } from './domains.js';
import { type GroupsView, groupsView } from './group-view.js';
import type { Answer } from './op.js';

export type { CallerSignal, SchedulerObserver, SchedulerOptions, Submission } from './config.js';
export type { UpstreamTransport } from './dispatch.js';
export type { FlushReason } from './planner.js';

/** New apps between two sweeps for idle ones, whatever the sweep timer says. */
const SWEEP_EVERY_NEW_APPS = 1024;

export class Scheduler {
  readonly #c: SchedulerConfig;
  readonly #apps = new Map<string, AppEngine>();
  /** Bucket key → budget, for the limiter's reopen notices. */
  readonly #byKey = new Map<string, Budget>();
  readonly #abort = new AbortController();
  readonly #domains: FailureDomains;
  #seq = 0;
  #callIds = 1;
  #draining = false;
  #idleWaiters: Array<() => void> = [];
  #created = 0;
  #sweep: Timer | undefined;

  constructor(options: SchedulerOptions) {
    this.#c = resolve(options, this.#abort.signal);
    const onCircuit = options.onCircuit;
    this.#domains = new FailureDomains({
      ...DEFAULT_DOMAINS,
      breaker: this.#c.breaker,
      onCircuit: (e) => {
        onCircuit?.(e);
        // A breaker's state changed: its app's pump looks again (a half-open one may probe).
        this.#apps.get(e.appId)?.wake();
      },
      // A group's pause or pace learnt here is the fleet's (SPEC §8d); the other replicas' come in below.
      onShare: (notice) => options.limiter.share?.(notice),
    });
    // Another replica's settle: come back exactly when the bucket opens for this replica.
    options.limiter.onReopen?.((key, inMs) => this.#byKey.get(key)?.reopened(inMs));
    options.limiter.onShared?.((notice) => this.#domains.heard(notice, this.#c.clock.now()));
  }

  /** Queues one caller's op; resolves with its one answer. Never rejects. */
  submit(sub: Submission): Promise<Answer> {
    const c = this.#c;
    const now = c.clock.now();
    const app = this.#app(sub.appId);
    return new Promise<Answer>((resolve) => {
      if (sub.signal?.aborted) return resolve({ kind: 'error', error: callerGone() });
      const circuit = app.circuitOpen(now, sub.credential);
      if (circuit) {
        c.observer?.onShed?.({ appId: sub.appId, code: 'PROXY_CIRCUIT_OPEN' });
        return resolve({ kind: 'error', error: circuit });
      }
      app.submit(sub, now, resolve);
    });
  }

  /**
   * Waits for a token of an app's bucket for a call that bypasses the queue (pass-through, or the
   * client's own batch call). Resolves with a function to call once the call is answered, or with
   * the error to answer when no token comes before the deadline or the caller goes away.
   */
  admit(
    appId: string,
    bucket: BudgetName,
    signal?: AbortSignal,
    credential?: string,
    maxWaitMs?: number,
  ): Promise<Admitted | ProxyError> {
    return admit(
      { config: this.#c, domains: this.#domains },
      this.#app(appId),
      bucket,
      signal,
      credential,
      callerWaitMs(this.#c.maxWaitMs, maxWaitMs),
    );
  }

  /** Flushes everything queued without waiting for windows; resolves when every op is answered. */
  drain(): Promise<void> {
    this.#draining = true;
    for (const app of this.#apps.values()) app.wake();
    return this.idle();
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Answers every op still queued or in flight with `error` (the end of a shutdown grace period). */
  abandon(error: ProxyError): void {
    for (const app of this.#apps.values()) app.abandon(error);
    // Calls still upstream end now; their callers are answered above.
    this.#abort.abort(error);
  }

  get pending(): number {
    let n = 0;
    for (const app of this.#apps.values()) n += app.pending;
    return n;
  }

  /**
   * Per-app queue depths and breaker states, for metrics and the status page (apps in memory):
   * `circuit` is the worst of its groups' breakers (one group open refuses that group's calls only),
   * `openGroups` how many are open or half-open, `appWide` whether every group is refused (SPEC §8d).
   */
  snapshot(): AppSnapshot[] {
    const now = this.#c.clock.now();
    const apps = [...this.#apps.values()].map((a) => a.snapshot(now));
    // An idle app is forgotten whatever its breakers (SPEC §8d); the ones still open are shown.
    const domains = this.#domains;
    for (const appId of domains.openApps()) {
      if (this.#apps.has(appId)) continue;
      apps.push({
        appId,
        queued: 0,
        inflight: 0,
        batchTokens: this.#c.batchLimit.burst,
        circuit: domains.worstState(appId, now),
        openGroups: domains.openGroups(appId),
        pausedGroups: domains.pausedGroups(appId, now),
        appWide: domains.appWideMs(appId, now) > 0,
        budgetScopes: 0,
      });
    }
    return apps;
  }

  /**
   * An app's busiest `limit` groups with their queue, breaker, pause and pace, the others summed
   * (status page; bounded). An app the engine has forgotten shows what its domains still hold.
   */
  groups(appId: string, limit = 5): GroupsView {
    const now = this.#c.clock.now();
    return (
      this.#apps.get(appId)?.groups(now, limit) ?? groupsView(appId, undefined, this.#domains, now, limit)
    );
  }

  /** Failure domains remembered (tests; bounded whatever the upstream does). */
  get domains(): { groups: number; resources: number } {
    return this.#domains.size;
  }

  #app(appId: string): AppEngine {
    let app = this.#apps.get(appId);
    if (!app) {
      // Amortised: a burst of new apps between two sweeps is bounded too. Before the new one is in.
      if (++this.#created % SWEEP_EVERY_NEW_APPS === 0) this.#evict();
      app = new AppEngine(appId, {
        config: this.#c,
        domains: this.#domains,
        draining: () => this.#draining,
        nextCallId: () => this.#callIds++,
        nextSeq: () => this.#seq++,
        answered: () => this.#answered(),
        budgets: this.#byKey,
      });
      this.#apps.set(appId, app);
      this.#armSweep();
    }
    return app;
  }

  /**
   * Forgets every app indistinguishable from a new one (nothing queued or in flight, budgets full
   * and open, breaker closed): per-app memory is bounded by the apps in use, not by every appId
   * ever seen.
   */
  #evict(): void {
    const now = this.#c.clock.now();
    this.#domains.sweep(now);
    for (const [appId, app] of this.#apps) {
      if (!app.isFresh(now)) {
        app.sweep(now);
        continue;
      }
      app.stop();
      this.#apps.delete(appId);
      for (const budget of app.budgets()) this.#byKey.delete(budget.key);
    }
  }

  /** One background sweep timer while any app (or failure domain) is held. */
  #armSweep(): void {
    // The timer first: `size` counts apps, and this runs for every new app.
    if (this.#sweep) return;
    const domains = this.#domains.size;
    if (this.#apps.size === 0 && domains.groups + domains.resources === 0) return;
    this.#sweep = this.#c.clock.setTimeout(
      () => {
        this.#sweep = undefined;
        this.#evict();
        this.#armSweep();
      },
      this.#c.idleSweepMs,
      true,
    );
  }

  #answered(): void {
    if (this.#idleWaiters.length === 0 || this.pending !== 0) return;
    const waiting = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiting) resolve();
  }
}
