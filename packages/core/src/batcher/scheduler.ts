// The engine's facade: holds each caller's op for a short window, packs ops that may travel together
// into upstream batch calls, spends the two upstream budgets (batch calls and single calls, SPEC §7b)
// and answers every caller exactly once. One AppEngine per app does the work (app-engine.ts); this
// keeps the apps, admits callers, and drains.

import { ProxyError } from '../errors.js';
import { deadlineError } from './answer.js';
import { AppEngine } from './app-engine.js';
import type { CircuitState } from './breaker.js';
import type { Budget } from './budget.js';
import { sleep, type Timer } from './clock.js';
import {
  type CallerSignal,
  resolve,
  type SchedulerConfig,
  type SchedulerOptions,
  type Submission,
} from './config.js';
import { DEFAULT_DOMAINS, FailureDomains } from './domains.js';
import { type GroupsView, groupsView } from './group-view.js';
import { type Answer, isWriteMethod, type PendingOp, type Waiter } from './op.js';
import { resourceOf } from './resources.js';
import { isIdempotent } from './retry.js';

export type { CallerSignal, SchedulerObserver, SchedulerOptions, Submission } from './config.js';
export type { UpstreamTransport } from './dispatch.js';
export type { FlushReason } from './planner.js';

const closed = () => new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away');

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
        this.#apps.get(e.appId)?.pump.kick();
      },
    });
    // Another replica's settle: come back exactly when the bucket opens for this replica.
    options.limiter.onReopen?.((key, inMs) => this.#byKey.get(key)?.reopened(inMs));
  }

  /** Queues one caller's op; resolves with its one answer. Never rejects. */
  submit(sub: Submission): Promise<Answer> {
    const c = this.#c;
    const now = c.clock.now();
    const app = this.#app(sub.appId);
    return new Promise<Answer>((resolve) => {
      if (sub.signal?.aborted) return resolve({ kind: 'error', error: closed() });
      const circuit = app.circuitOpen(now, sub.credential);
      if (circuit) {
        c.observer?.onShed?.({ appId: sub.appId, code: 'PROXY_CIRCUIT_OPEN' });
        return resolve({ kind: 'error', error: circuit });
      }
      const waiter: Waiter = { arrivedAt: now, resolve, spanContext: sub.spanContext };
      const isWrite = isWriteMethod(sub.op.method);
      const readKey = isWrite ? undefined : readKeyOf(sub.credential, sub.op);

      // Read collapsing: an identical queued read takes this caller too, unless a write to its
      // resource arrived after it (this caller must see that write).
      const joined = readKey === undefined ? undefined : app.state.joinable(readKey);
      if (joined) {
        joined.waiters.push(waiter);
        this.#watchAbort(app, joined, waiter, sub.signal);
        c.observer?.onCollapsed?.({ appId: sub.appId });
        return;
      }
      if (app.state.counts.queued >= c.queueMaxOps) {
        c.observer?.onShed?.({ appId: sub.appId, code: 'PROXY_QUEUE_FULL' });
        return resolve({
          kind: 'error',
          error: new ProxyError('PROXY_QUEUE_FULL', `the queue for app ${sub.appId} is full`, {
            retryAfterSec: Math.max(1, Math.ceil(app.batch.interval / 1000)),
          }),
        });
      }
      const resource = resourceOf(c.dialect.resourceKey?.(sub.op.path, sub.credential) ?? sub.op.path);
      // A resource that just failed a batch: its op rides with no write it could cost its one attempt,
      // and a write of its own rides alone (SPEC §8d).
      const suspect = this.#domains.isSuspect(sub.appId, resource, now);
      const op: PendingOp = {
        seq: this.#seq++,
        appId: sub.appId,
        credential: sub.credential,
        op: sub.op,
        isWrite,
        readKey,
        resource,
        // SPEC §8d: a credential the upstream has not accepted delays nobody but itself.
        // Behind its own isolated ops, an op is isolated too, or it could overtake them.
        isolated:
          app.state.hasIsolated(sub.credential) ||
          (sub.verified !== true && !this.#domains.isAccepted(sub.appId, sub.credential, now)),
        enqueuedAt: now,
        deadline: now + c.maxWaitMs,
        notBefore: 0,
        batchCap: suspect && !isIdempotent(sub.op.method) ? 1 : Number.POSITIVE_INFINITY,
        suspect,
        state: 'queued',
        attempts: 0,
        waiters: [waiter],
        parked: false,
        dependents: [],
      };
      app.state.add(op);
      this.#watchAbort(app, op, waiter, sub.signal);
      app.arrived(op);
    });
  }

  /**
   * Waits for a token of an app's bucket for a call that bypasses the queue (pass-through, or the
   * client's own batch call). Resolves with a function to call once the call is answered, or with
   * the error to answer when no token comes before the deadline or the caller goes away.
   */
  async admit(
    appId: string,
    bucket: 'batch' | 'rest',
    signal?: AbortSignal,
    credential?: string,
  ): Promise<(() => void) | ProxyError> {
    const { clock, maxWaitMs, observer } = this.#c;
    const app = this.#app(appId);
    const budget = app.budget(bucket);
    const started = clock.now();
    if (!budget) {
      const paused = await this.#pauseOver(appId, credential, started, signal);
      return paused ?? (() => {});
    }
    // Calls that bypass the queue carry no group here: only the app open as a whole refuses them.
    const circuit = app.circuitOpen(started, undefined);
    if (circuit) return circuit;
    for (;;) {
      const paused = await this.#pauseOver(appId, credential, started, signal);
      if (paused) return paused;
      const decision = await budget.acquire({ waitedMs: clock.now() - started });
      if (decision.granted) return () => void budget.settle(decision, app.waiting());
      const now = clock.now();
      if (now + decision.retryAfterMs > started + maxWaitMs) {
        observer?.onShed?.({ appId, code: 'PROXY_DEADLINE_EXCEEDED' });
        return deadlineError(decision.retryAfterMs);
      }
      if (!(await sleep(clock, budget.blockedUntil - now, signal))) return closed();
    }
  }

  /**
   * SPEC §8d: a call of a throttled group (its credential paused by a 429) waits out the pause —
   * undefined once over — or gets the error to answer: the pause outlasts its deadline, or it left.
   */
  async #pauseOver(
    appId: string,
    credential: string | undefined,
    started: number,
    signal: AbortSignal | undefined,
  ): Promise<ProxyError | undefined> {
    const { clock, maxWaitMs, observer } = this.#c;
    for (;;) {
      if (signal?.aborted) return closed();
      const now = clock.now();
      const paused = credential === undefined ? 0 : this.#domains.pausedUntil(appId, credential, now);
      if (paused <= now) return undefined;
      if (paused > started + maxWaitMs) {
        observer?.onShed?.({ appId, code: 'PROXY_DEADLINE_EXCEEDED' });
        return deadlineError(paused - now);
      }
      if (!(await sleep(clock, paused - now, signal))) return closed();
    }
  }

  /** Flushes everything queued without waiting for windows; resolves when every op is answered. */
  drain(): Promise<void> {
    this.#draining = true;
    for (const app of this.#apps.values()) app.pump.kick();
    return this.idle();
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Answers every op still queued or in flight with `error` (the end of a shutdown grace period). */
  abandon(error: ProxyError): void {
    for (const app of this.#apps.values()) {
      app.pump.hold(() => {
        for (const op of [...app.state.queuedOps(), ...app.state.flying()]) {
          app.finish(op, { kind: 'error', error });
        }
      });
    }
    // Calls still upstream end now; their callers are answered above.
    this.#abort.abort(error);
  }

  get pending(): number {
    let n = 0;
    for (const app of this.#apps.values()) n += app.state.counts.queued + app.state.counts.inflight;
    return n;
  }

  /**
   * Per-app queue depths and breaker states, for metrics and the status page (apps in memory):
   * `circuit` is the worst of its groups' breakers (one group open refuses that group's calls only),
   * `openGroups` how many are open or half-open, `appWide` whether every group is refused (SPEC §8d).
   */
  snapshot(): Array<{
    appId: string;
    queued: number;
    inflight: number;
    batchTokens: number;
    circuit: CircuitState;
    openGroups: number;
    pausedGroups: number;
    appWide: boolean;
  }> {
    const now = this.#c.clock.now();
    const apps = [...this.#apps.values()].map((a) => ({
      appId: a.appId,
      ...a.state.counts,
      batchTokens: Math.floor(a.batch.tokensAt(now)),
      circuit: a.circuitState(now),
      openGroups: a.openGroups,
      pausedGroups: this.#domains.pausedGroups(a.appId, now),
      appWide: a.openAppWide(now),
    }));
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
      });
    }
    return apps;
  }

  /**
   * An app's busiest `limit` groups with their queue, breaker, pause and pace, the others summed
   * (status page; bounded). An app the engine has forgotten shows what its domains still hold.
   */
  groups(appId: string, limit = 5): GroupsView {
    return groupsView(appId, this.#apps.get(appId)?.state, this.#domains, this.#c.clock.now(), limit);
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
        answered: () => this.#answered(),
      });
      this.#apps.set(appId, app);
      this.#byKey.set(app.batch.key, app.batch);
      if (app.rest) this.#byKey.set(app.rest.key, app.rest);
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
      if (!app.isFresh(now)) continue;
      app.pump.stop();
      this.#apps.delete(appId);
      this.#byKey.delete(app.batch.key);
      if (app.rest) this.#byKey.delete(app.rest.key);
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

  #watchAbort(app: AppEngine, op: PendingOp, waiter: Waiter, signal: CallerSignal | undefined): void {
    signal?.addEventListener(
      'abort',
      () => {
        if (op.state !== 'queued') return; // already sent: its answer will simply find nobody
        const i = op.waiters.indexOf(waiter);
        if (i === -1) return;
        op.waiters.splice(i, 1);
        waiter.resolve({ kind: 'error', error: closed() });
        if (op.waiters.length === 0) app.finish(op, { kind: 'error', error: closed() });
      },
      { once: true },
    );
  }
}

function readKeyOf(credential: string, op: Submission['op']): string {
  // Carried headers change the answer (Graph's ConsistencyLevel), so they are part of the key.
  const carried = op.headers ? JSON.stringify(Object.entries(op.headers).sort()) : '';
  return `${credential}\n${op.path}\n${new URLSearchParams(op.query).toString()}\n${op.apiVersion ?? ''}\n${op.search ?? ''}\n${carried}`;
}
