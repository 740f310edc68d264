// One app inside the engine: its ops (app-state.ts), its two budgets, its pump, and what happens to
// an upstream call from the moment its ops leave to their answers. The pump's one step: plan, pick a
// lane, take a token, send.

import type { BatchPlan } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { headerPace, tightenReset } from '../ratelimit/header-pace.js';
import { bucketKey, type Decision, type Waiting } from '../ratelimit/limiter.js';
import { type Headers, readRateHeaders } from '../ratelimit/rate-headers.js';
import { applyOutcome, callerGone, deadlineError, type RequeueReason, withQueueTime } from './answer.js';
import { AppState, type Counts, type Requeue } from './app-state.js';
import type { CircuitState } from './breaker.js';
import { Budget, type BudgetName } from './budget.js';
import { type CallerSignal, callerWaitMs, type SchedulerConfig, type Submission } from './config.js';
import { dispatch } from './dispatch.js';
import type { FailureDomains, GroupCall } from './domains.js';
import { type GroupsView, groupsView } from './group-view.js';
import { Lanes } from './lanes.js';
import { type Answer, isWriteOp, type Lane, newPendingOp, type PendingOp, type Waiter } from './op.js';
import { classify, longestRetryAfter, type Outcome, opsThrottled, throttledAppWide } from './outcome.js';
import { type Action, type Flush, type GroupLimits, holdMs, type Plan, plan } from './planner.js';
import { NORMAL, rankOf } from './priority.js';
import { Pump, type StepResult } from './pump.js';
import { resourceOf } from './resources.js';
import { pauseMs } from './retry.js';
import { Scopes, ScopesPass, scopedAppId } from './scopes.js';

/** Ops are flushed this long before their deadline at the latest, whatever the hold says. */
const DEADLINE_MARGIN_MS = 50;

/** What the apps share: the configuration and the engine-wide bookkeeping. */
export interface EngineShared {
  readonly config: SchedulerConfig;
  /** Breakers, pauses and suspect resources per group and resource (SPEC §8d). */
  readonly domains: FailureDomains;
  readonly draining: () => boolean;
  readonly nextCallId: () => number;
  /** Arrival order over every app (PendingOp.seq). */
  readonly nextSeq: () => number;
  /** An op was answered (the engine may have become idle). */
  readonly answered: () => void;
  /** Every budget by its bucket key, for the limiter's reopen notices: apps add and remove theirs. */
  readonly budgets: Map<string, Budget>;
}

/** An upstream call leaving: its ops, the token it spends, its group's call. */
interface Departure {
  readonly lane: Lane;
  /** The lanes of the scope whose budget it spends. */
  readonly lanes: Lanes;
  readonly call: GroupCall;
  readonly ops: PendingOp[];
  readonly budget: Budget;
  readonly decision: Decision;
  readonly plan: BatchPlan;
}

/** One app as metrics and the status page see it. */
export interface AppSnapshot extends Counts {
  readonly appId: string;
  readonly batchTokens: number;
  readonly circuit: CircuitState;
  readonly openGroups: number;
  readonly pausedGroups: number;
  readonly appWide: boolean;
  /** Budgets held beside the app's own: per tenant, and per credential not yet accepted (scopes.ts). */
  readonly budgetScopes: number;
  /** Queued ops of high and of low priority (issue #31); the rest of `queued` are normal. */
  readonly queuedHigh: number;
  readonly queuedLow: number;
}

export class AppEngine {
  readonly state: AppState;
  /** The app's budgets: its own, and per tenant where the dialect says (SPEC §8d, scopes.ts). */
  readonly scopes: Scopes;
  readonly #pump: Pump;
  readonly #c: SchedulerConfig;
  readonly #domains: FailureDomains;

  constructor(
    readonly appId: string,
    private readonly shared: EngineShared,
  ) {
    const c = shared.config;
    this.#c = c;
    this.#domains = shared.domains;
    this.state = new AppState(appId);
    this.#pump = new Pump(
      c.clock,
      (timerAt) => this.#step(timerAt),
      (error) => this.#pumpCrashed(error),
    );
    const budget = (name: BudgetName, scope: string, limit = c.batchLimit) =>
      new Budget(name, bucketKey(c.upstreamId, scopedAppId(appId, scope), name), limit, {
        limiter: c.limiter,
        clock: c.clock,
        leaseMs: c.leaseMs,
        observe: (granted, waitMs) => c.observer?.onLimiter?.({ appId, bucket: name, granted, waitMs }),
        wake: () => this.#pump.kick(),
      });
    const byKey = shared.budgets;
    this.scopes = new Scopes({
      claimsOf: c.dialect.budgetScopeOf?.bind(c.dialect),
      accepted: (credential, now) => this.#domains.isAccepted(appId, credential, now),
      make: (scope) =>
        new Lanes(budget('batch', scope), c.restLimit ? budget('rest', scope, c.restLimit) : undefined, c),
      made: (budgets) => {
        for (const b of budgets) byKey.set(b.key, b);
      },
      dropped: (budgets) => {
        for (const b of budgets) byKey.delete(b.key);
      },
    });
  }

  /** The app's own lanes (every group's, for a dialect without budget scopes). */
  get lanes(): Lanes {
    return this.scopes.app;
  }

  /** The app's own batch budget (its interval is the app's pace). */
  get batch(): Budget {
    return this.scopes.app.batch;
  }

  /** Every budget of every scope, for the limiter's reopen notices. */
  budgets(): Budget[] {
    const all: Budget[] = [];
    for (const lanes of this.scopes.all()) {
      all.push(lanes.batch);
      if (lanes.rest) all.push(lanes.rest);
    }
    return all;
  }

  /** Forgets the tenant scopes nobody uses (the Scheduler's sweep). */
  sweep(now: number): void {
    this.scopes.sweep(now);
  }

  /**
   * Nothing queued, in flight or paced that a fresh AppEngine would not have: it may go, on idleness
   * alone (SPEC §8d). Breakers and pauses live in the engine's bounded domains, where an app made
   * anew finds them again.
   */
  isFresh(now: number): boolean {
    return this.state.isIdle && this.scopes.isFresh(now) && this.#pump.isIdle;
  }

  /** Ops queued or in flight. */
  get pending(): number {
    const { queued, inflight } = this.state.counts;
    return queued + inflight;
  }

  /**
   * Queues one caller's op (or joins an identical queued read); `resolve` gets its one answer. The
   * caller is already past the door (circuit, abort) — Scheduler.submit.
   */
  submit(sub: Submission, now: number, resolve: (answer: Answer) => void): void {
    const c = this.#c;
    const waiter: Waiter = { arrivedAt: now, resolve, spanContext: sub.spanContext };
    const isWrite = isWriteOp(sub.op);
    const waitMs = callerWaitMs(c.maxWaitMs, sub.maxWaitMs);
    const hurried = waitMs < c.maxWaitMs;
    const rank = rankOf(sub.priority);
    // Reads collapse with reads of their own priority only: a high caller never waits a low op's turn.
    const key = isWrite || hurried ? undefined : readKeyOf(sub.credential, sub.op);
    const readKey = key === undefined || rank === NORMAL ? key : `${rank}\u0000${key}`;

    // Read collapsing: an identical queued read takes this caller too, unless a write to its
    // resource arrived after it (this caller must see that write).
    const joined = readKey === undefined ? undefined : this.state.joinable(readKey);
    if (joined) {
      this.state.join(joined, waiter);
      this.#watchAbort(joined, waiter, sub.signal);
      c.observer?.onCollapsed?.({ appId: this.appId });
      return;
    }
    if (this.state.counts.queued >= c.queueMaxOps) {
      c.observer?.onShed?.({ appId: this.appId, code: 'PROXY_QUEUE_FULL' });
      resolve({
        kind: 'error',
        error: new ProxyError('PROXY_QUEUE_FULL', `the queue for app ${this.appId} is full`, {
          retryAfterSec: Math.max(1, Math.ceil(this.batch.interval / 1000)),
        }),
      });
      return;
    }
    const resource = resourceOf(c.dialect.resourceKey?.(sub.op.path, sub.credential) ?? sub.op.path);
    const op = newPendingOp({
      seq: this.shared.nextSeq(),
      appId: this.appId,
      credential: sub.credential,
      op: sub.op,
      readKey,
      resource,
      // SPEC §8d: a credential the upstream has not accepted delays nobody but itself. Behind its
      // own isolated ops, an op is isolated too, or it could overtake them.
      isolated:
        this.state.hasIsolated(sub.credential) ||
        (sub.verified !== true && !this.#domains.isAccepted(this.appId, sub.credential, now)),
      enqueuedAt: now,
      deadline: now + waitMs,
      hurried,
      rank,
      // A resource that just failed a batch: its op rides with no write it could cost its one
      // attempt, and a write of its own rides alone (SPEC §8d).
      suspect: this.#domains.isSuspect(this.appId, resource, now),
      waiters: [waiter],
    });
    this.state.add(op);
    this.#watchAbort(op, waiter, sub.signal);
    this.#arrived(op);
  }

  /** The pump looks again now (a breaker changed, a drain began). */
  wake(): void {
    this.#pump.kick();
  }

  /** No more passes or timers: the app is forgotten. */
  stop(): void {
    this.#pump.stop();
  }

  /** Answers every op still queued or in flight with `error` (the end of a shutdown's grace). */
  abandon(error: ProxyError): void {
    this.#pump.hold(() => {
      for (const op of [...this.state.queuedOps(), ...this.state.flying()]) {
        this.finish(op, { kind: 'error', error });
      }
    });
  }

  snapshot(now: number): AppSnapshot {
    return {
      appId: this.appId,
      ...this.state.counts,
      batchTokens: Math.floor(this.batch.tokensAt(now)),
      circuit: this.circuitState(now),
      openGroups: this.openGroups,
      pausedGroups: this.#domains.pausedGroups(this.appId, now),
      appWide: this.openAppWide(now),
      budgetScopes: this.scopes.size - 1,
      queuedHigh: this.state.queuedOf(0),
      queuedLow: this.state.queuedOf(2),
    };
  }

  /** The app's busiest `limit` groups, the others summed (status page). */
  groups(now: number, limit: number): GroupsView {
    return groupsView(this.appId, this.state, this.#domains, now, limit);
  }

  /**
   * The error a group's call gets while its breaker is open — or, its own closed, while the app is
   * open as a whole (several groups failing together); undefined when it may queue. Without a
   * credential (calls that bypass the queue, which no group's breaker counts): the app's alone.
   */
  circuitOpen(now: number, credential: string | undefined): ProxyError | undefined {
    const waitMs =
      credential === undefined
        ? this.#domains.appWideMs(this.appId, now)
        : this.#domains.refusalMs(this.appId, credential, now);
    return circuitError(this.appId, waitMs);
  }

  /** The worst of the app's group breakers (status page, metrics). */
  circuitState(now: number): CircuitState {
    return this.#domains.worstState(this.appId, now);
  }

  /** Whether the app refuses every group's calls (several of its groups open together). */
  openAppWide(now: number): boolean {
    return this.#domains.appWideMs(this.appId, now) > 0;
  }

  /** Groups of the app whose breaker is open or half-open. */
  get openGroups(): number {
    return this.#domains.openGroups(this.appId);
  }

  /**
   * OpSink: the ops' resources were in a batch that failed as a whole. Ops of those resources
   * already queued (submitted while the batch flew) turn suspect too, so no write shares their batch.
   */
  suspect(ops: readonly PendingOp[]): void {
    const now = this.#c.clock.now();
    const resources = new Set<string>();
    for (const op of ops) {
      this.#domains.suspect(this.appId, op.resource, now);
      resources.add(op.resource);
    }
    this.state.markSuspect(resources);
  }

  /** OpSink: the op got a usable answer. */
  cleared(op: PendingOp): void {
    this.#domains.cleared(this.appId, op.resource);
  }

  /** The budget a call of `credential` spends (the app's own without one). */
  budget(name: BudgetName, credential?: string): Budget | undefined {
    return this.scopes.budgetOf(name, credential, this.#c.clock.now());
  }

  /** This replica's turn for the app's buckets: how long its oldest queued op has waited, if any. */
  waiting(): Waiting {
    const oldest = this.state.oldestQueuedAt();
    return { waitedMs: oldest === undefined ? undefined : this.#c.clock.now() - oldest };
  }

  /** Answers an op (every waiter of it) and lets the pump look again: the answer may unblock others. */
  finish(op: PendingOp, answer: Answer, sentAt?: number): void {
    const waiters = this.state.finish(op);
    if (waiters.length === 0) return;
    const now = this.#c.clock.now();
    for (const waiter of waiters) {
      const answered = withQueueTime(answer, sentAt === undefined ? 0 : sentAt - waiter.arrivedAt);
      this.#c.observer?.onAnswer?.({
        appId: this.appId,
        lane: answered.timing?.lane,
        status: answered.kind === 'result' ? answered.status : answered.error.status,
        queueMs: answered.timing?.queueMs ?? now - waiter.arrivedAt,
      });
      waiter.resolve(answered);
    }
    this.#pump.kick();
    this.shared.answered();
  }

  /**
   * A new op is queued. While every lane stays closed for longer than a window, it cannot leave
   * before they reopen (and the pass then plans it): unless it is due by then, nothing is planned
   * now. An arrival then costs O(1), not a plan over every group queued (SPEC §8d: a planning pass
   * costs O(groups ready to leave)).
   */
  #arrived(op: PendingOp): void {
    const now = this.#c.clock.now();
    const opensAt = this.scopes.lanesOf(op.credential, now).opensAt();
    // Due before its lanes (or its group's pause) open, it is answered at once by a pass.
    const leavesAt = Math.max(opensAt, this.#domains.pausedUntil(this.appId, op.credential, now));
    if (
      opensAt > now + this.#c.windowMs &&
      op.deadline > leavesAt + DEADLINE_MARGIN_MS &&
      !this.shared.draining()
    )
      this.#pump.wakeBy(opensAt);
    else this.#pump.kick();
  }

  /** OpSink: ops of a call go back to their queues (a 429, a retry, a split batch). */
  requeue(ops: PendingOp[], how: Requeue & { readonly reason: RequeueReason }): void {
    for (const op of ops) this.state.requeue(op, how);
    this.#c.observer?.onRequeue?.({ appId: this.appId, reason: how.reason, count: ops.length });
    this.#pump.kick();
  }

  /** Plans and, when something may leave, takes a token for it (the one part that waits). */
  #step(timerAt: number): StepResult | Promise<StepResult> {
    const c = this.#c;
    const now = c.clock.now();
    // The pump's timer, set for a window's (or a hold's) end, may fire a little before it by now()
    // (Node's timers run on a millisecond loop clock): that window is over, or its batch would wait a
    // second timer — up to 1 ms more at every window. Only windows and holds: tokens, back-offs,
    // deadlines and the breaker stay on now().
    const windowNow = Math.max(now, Math.min(timerAt, now + (c.clock.timerSlackMs ?? 0)));
    const draining = this.shared.draining();
    const domains = this.#domains;
    const appId = this.appId;
    const scopes = this.scopes;
    const limits = new Map<Lanes, GroupLimits>();
    const limitsOf = (lanes: Lanes): GroupLimits => {
      let l = limits.get(lanes);
      if (!l) {
        const { batch } = lanes;
        l = {
          closedUntil: lanes.closedUntil(),
          holdMs: draining ? 0 : holdMs(batch.tokensAt(now), c.batchLimit.burst, batch.interval),
          leadMs: DEADLINE_MARGIN_MS + batch.interval,
        };
        limits.set(lanes, l);
      }
      return l;
    };
    const own = limitsOf(scopes.app);
    const closedUntilOf = scopes.split
      ? (credential: string) => limitsOf(scopes.lanesOf(credential, now)).closedUntil
      : () => own.closedUntil;
    const planned = plan(this.state, now, {
      windowNow,
      windowMs: c.windowMs,
      maxOps: c.maxOps,
      draining,
      ...own,
      maxBytes: c.maxBatchBytes,
      chains: c.dialect.serialChains === true && c.dependsOnChains !== false,
      pausedUntil: (credential) => domains.pausedUntil(appId, credential, now),
      ...(scopes.split && { limitsOf: (credential: string) => limitsOf(scopes.lanesOf(credential, now)) }),
    });
    if (this.#shed(planned, now, closedUntilOf)) return true;
    // A group whose half-open breaker has its probe out waits for the probe's answer (it kicks).
    const sendable = planned.flushes.every((f) => domains.canCall(appId, f.credential, now))
      ? planned
      : { ...planned, flushes: planned.flushes.filter((f) => domains.canCall(appId, f.credential, now)) };
    const pass = new ScopesPass((credential) => scopes.lanesOf(credential, c.clock.now()));
    const { action, index } = pass.decide(sendable.flushes, now);
    if (action.kind === 'none') {
      const at = pass.wakeAt(sendable, now);
      // Every lane closed for longer than a window: until one is asked again (its reopening, or the
      // poll that finds another replica's lease released), windows ending are no event — a pass
      // each would plan every group again (SPEC §8d: O(groups ready to leave)). Ops falling due
      // meanwhile were shed above (due by `closedUntil`) or are at most one poll late.
      const opensAt = scopes.opensAt();
      if (opensAt <= now + c.windowMs) return at;
      return Math.min(Math.max(at, opensAt), sendable.nextDeadline);
    }
    return this.#take(sendable, action, index, now, pass);
  }

  /**
   * Takes a token for the first action a lane allows, then sends it; a denied budget is not asked
   * again. The plan's other ready groups follow in turn while tokens last, without planning again:
   * a pass costs one plan per burst of calls, not one per call.
   */
  async #take(
    planned: Plan,
    first: Exclude<Action, { kind: 'none' }>,
    firstIndex: number,
    at: number,
    pass: ScopesPass,
  ): Promise<StepResult> {
    const c = this.#c;
    let action: Action = first;
    const flushes = planned.flushes;
    /** Where the flushes still to send begin: the current action's. */
    let start = firstIndex;
    // The plan's flushes not yet considered: those before the first action's were found closed.
    let i = firstIndex + 1;
    let sent = false;
    // The lanes are judged at `now`, and so is the wake-up: a lane closed then counts as an event
    // even when it has opened since (an await may end after a block).
    let now = at;
    for (;;) {
      if (action.kind === 'none') return sent || pass.wakeAt(planned, now);
      // Half-open: one probe at a time per group; its answer (or its end) kicks the pump again.
      const credential = action.kind === 'batch' ? action.flush.credential : action.op.credential;
      let call: GroupCall | undefined = this.#domains.mayCall(this.appId, credential, c.clock.now());
      if (!call) return sent || planned.wakeAt;
      const lanes = this.scopes.lanesOf(credential, now);
      try {
        const budget = lanes.budgetOf(action);
        const decision = await budget.acquire(this.waiting());
        now = c.clock.now();
        if (!decision.granted) {
          pass.of(lanes).deny(budget);
          // The flushes not yet sent whose group may still send (an answer during the await may
          // have paused it): never one already sent, or a token would go for nothing.
          const left = flushes
            .slice(start)
            .filter(
              (f) =>
                f.ops[0]?.state === 'queued' &&
                this.#domains.pausedUntil(this.appId, f.credential, now) <= now,
            );
          const next = pass.decide(left, now);
          action = next.action;
          const chosen = left[next.index];
          if (chosen) {
            start = flushes.indexOf(chosen, start);
            i = Math.max(i, start + 1);
          }
          continue;
        }
        this.#send(action, lanes, budget, decision, call);
        call = undefined; // the call's own now: it ends it
      } finally {
        call?.release(c.clock.now());
      }
      sent = true;
      // The next group in turn whose lanes allow it, skipping the one just sent and any paused or
      // probing since the plan (an answer may have come during the await): O(1) per call while
      // tokens last, not a look at every flush.
      const single = action.kind === 'single' ? action.op : undefined;
      const gone = action.kind === 'batch' ? action.flush : undefined;
      action = { kind: 'none' };
      while (i < flushes.length && action.kind === 'none') {
        const f = flushes[i++] as Flush;
        if (f === gone || f.ops[0] === single) continue;
        if (this.#domains.pausedUntil(this.appId, f.credential, now) > now) continue;
        if (!this.#domains.canCall(this.appId, f.credential, now)) continue;
        const next = pass.decide([f], now);
        if (next.action.kind === 'none' && !this.scopes.split) break;
        action = next.action;
        start = i - 1;
      }
    }
  }

  /**
   * Answers at once what cannot leave: ops past their deadline, ops due before any lane (or their
   * group's pause) can open, with the real wait as Retry-After, and everything queued in a group
   * whose breaker is open.
   */
  #shed(planned: Plan, now: number, closedUntilOf: (credential: string) => number): boolean {
    let shed = false;
    for (const op of [...planned.expired, ...planned.doomed]) {
      const opensAt = Math.max(
        closedUntilOf(op.credential),
        this.#domains.pausedUntil(this.appId, op.credential, now),
      );
      const error = op.deadline <= now ? deadlineError(this.batch.interval) : deadlineError(opensAt - now);
      this.#c.observer?.onShed?.({ appId: this.appId, code: 'PROXY_DEADLINE_EXCEEDED' });
      this.finish(op, { kind: 'error', error });
      shed = true;
    }
    for (const group of [...this.state.groups.values()]) {
      const circuit = this.circuitOpen(now, group.credential);
      if (!circuit) continue;
      // Queued ops the breaker sheds are answered through onAnswer; the door's refusals are onShed.
      for (const op of [...group.queued()]) this.finish(op, { kind: 'error', error: circuit });
      shed = true;
    }
    return shed;
  }

  /** Sends what the action says, with the ops still queued after the acquire's await. */
  #send(
    action: Exclude<Action, { kind: 'none' }>,
    lanes: Lanes,
    budget: Budget,
    decision: Decision,
    call: GroupCall,
  ): void {
    const ops = (action.kind === 'batch' ? action.flush.ops : [action.op]).filter(
      (op) => op.state === 'queued',
    );
    const first = ops[0];
    if (!first) {
      call.release(this.#c.clock.now());
      void budget.settle(decision, this.waiting());
      return;
    }
    const lane: Lane = action.kind === 'batch' ? 'batch' : 'single';
    this.#c.observer?.onFlush?.({
      appId: this.appId,
      lane,
      size: ops.length,
      reason: action.kind === 'batch' ? action.flush.reason : 'single-lane',
    });
    const plan = action.kind === 'batch' && ops.length > 1 ? (action.flush.plan ?? 'parallel') : 'parallel';
    this.#call({ lane, lanes, call, ops, budget, decision, plan }).catch((error: unknown) =>
      this.#crashed(ops, error),
    );
  }

  /**
   * One upstream call, from its ops leaving to their answers. Its group call ends with what it
   * learnt, before the answers are applied; a crash before that ends it here (nothing learnt).
   */
  async #call(departure: Departure): Promise<void> {
    let sentAt: number | undefined;
    try {
      sentAt = await this.#callUpstream(departure);
    } finally {
      departure.call.release(this.#c.clock.now(), sentAt);
    }
  }

  /** #call's body: sends, settles the budget, applies the outcome; returns when the call left. */
  async #callUpstream({ lane, lanes, call, ops, budget, decision, plan }: Departure): Promise<number> {
    const c = this.#c;
    const { credential } = call;
    this.state.leave(ops);
    this.state.served(credential);
    this.#domains.sent(this.appId, credential, c.clock.now());
    // The upstream counts batched ops against the single-call budget too: pay for them, in one call.
    if (lane === 'batch' && c.batchOpsSpendRest) void lanes.rest?.charge(ops.length);
    const sent = await dispatch(c, this.appId, lane, credential, ops, plan);
    const { result } = sent;
    c.observer?.onUpstream?.({
      appId: this.appId,
      lane,
      status: result instanceof ProxyError ? 'error' : result.status,
      ms: sent.answeredAt - sent.sentAt,
    });
    const outcome = classify(
      c.dialect,
      lane,
      ops.length,
      result,
      plan,
      ops.map((o) => o.op),
    );
    // The upstream took the credential (it refuses a bad one whole, before any op runs).
    if (!(result instanceof ProxyError) && result.status < 400)
      this.#domains.accepted(this.appId, credential, c.clock.now());
    // The upstream's figures, like a 429, act before the settle: the settle spaces at their rate.
    if (!(result instanceof ProxyError)) await this.#heard(credential, budget, result.headers);
    // A 429 pauses its scope before the settle, so the settle's reopen time includes the pause.
    await this.#throttled(lane, credential, outcome, budget);
    void budget.settle(decision, this.waiting());
    const now = c.clock.now();
    // A poisoned op's failures count too (the upstream down looks the same at first); bisection
    // (answer.ts) gets the others their answers, whose successes reset the count.
    // Ended before the answers are applied: the pass they run may send this group's next call.
    if (outcome.kind === 'failed') call.failed(now, sent.sentAt);
    // A 429 learns nothing of the group's health.
    else if (outcome.kind === 'throttled') call.release(now, sent.sentAt);
    // A 200 batch with ops throttled inside is no recovery for the group's own pace.
    else call.succeeded(now, !opsThrottled(outcome));
    const answered = {
      lane,
      ops,
      sentAt: sent.sentAt,
      answeredAt: sent.answeredAt,
      callId: this.shared.nextCallId(),
    };
    // One pass after all the call's answers and requeues, not one per op.
    this.#pump.hold(() =>
      applyOutcome(this, outcome, answered, { now, maxAttempts: c.maxAttempts, random: c.random }),
    );
    return sent.sentAt;
  }

  /**
   * SPEC §8d, a throttle pauses what was throttled. A whole batch call's 429 is the app's batch
   * bucket (the fleet's, through the limiter). A single call's 429, and ops throttled inside a 200
   * batch, pause the scope the dialect says its 429s mean: the app's bucket, or the group's
   * credential alone (Graph throttles per user and mailbox) — by the longest Retry-After among them
   * ("retry all the failed requests in a new batch after the longest retry-after value"). The same
   * throttle on several groups at once is the app's: its bucket pauses too.
   */
  async #throttled(lane: Lane, credential: string, outcome: Outcome, spent: Budget): Promise<void> {
    const c = this.#c;
    // The scope the credential spends now (its tenant's once accepted, which a 200 batch just did):
    // what a throttle wider than its user pauses.
    const budget = this.scopes.lanesOf(credential, c.clock.now()).budget(spent.name) ?? spent;
    let ms: number | undefined;
    if (outcome.kind === 'throttled') {
      const { headers } = outcome.response;
      ms = pauseMs(headers['retry-after'], c.clock.epochMs(), c.maxRetryAfterMs);
      const scope = c.dialect.throttleScopeOf?.(c.dialect.answerHeaders(headers)) ?? c.dialect.throttleScope;
      if (lane === 'batch' || scope !== 'credential') return budget.pause(ms);
    } else {
      ms = longestRetryAfter(outcome, c.clock.epochMs(), c.maxRetryAfterMs);
      if (ms === undefined) return;
      // The upstream named a scope as wide as the app (x-ms-throttle-scope): the app's bucket.
      if (c.dialect.throttleScope !== 'credential' || throttledAppWide(outcome)) return budget.pause(ms);
    }
    const now = c.clock.now();
    this.#domains.pause(this.appId, credential, now + ms, now);
    if (this.#domains.pausedGroups(this.appId, now) >= this.#domains.appWideGroups) await budget.pause(ms);
  }

  /**
   * RATE_HEADERS: an answer's budget figures slow the bucket of the scope they count (SPEC §8d: the
   * app's, or the tenant's once its credential is accepted), as a 429 would pause it.
   */
  async #heard(credential: string, spent: Budget, headers: Headers): Promise<void> {
    const c = this.#c;
    if (c.rateHeaders === undefined || c.rateHeaders.mode === 'off') return;
    const read = readRateHeaders(headers, c.rateHeaders.mode, c.clock.epochMs());
    if (read === undefined) return;
    const now = c.clock.now();
    const budget = this.scopes.lanesOf(credential, now).budget(spent.name) ?? spent;
    const { reading, resetAt } = tightenReset(read, now, budget.resetAt);
    budget.resetAt = resetAt;
    // Graph's hint scales the operator's rate, not the one the last hint left: every answer of a
    // window carries the hint, and scaling the scaled rate would halve it again and again.
    const pace = headerPace(reading, budget.limit.ratePerSec, {
      ceilingPerSec: budget.limit.ratePerSec,
      margin: c.rateHeaders.margin,
    });
    await budget.heard(pace);
    c.observer?.onRateHeaders?.({
      appId: this.appId,
      key: budget.key,
      remaining: reading.remaining,
      resetInMs: reading.resetInMs ?? reading.windowMs,
      ratePerSec: budget.spending(c.clock.now()).ratePerSec,
    });
  }

  /** A bug while sending or answering: every op of the call still unanswered gets a 500. */
  #crashed(ops: readonly PendingOp[], error: unknown): void {
    const failure = new ProxyError('PROXY_INTERNAL', 'the proxy failed to answer this call', {
      cause: error,
    });
    this.#pump.hold(() => {
      for (const op of ops) this.finish(op, { kind: 'error', error: failure });
    });
  }

  /** A bug in the pump: answer what is queued rather than leave callers hanging. */
  #pumpCrashed(error: unknown): void {
    const failure = new ProxyError('PROXY_INTERNAL', 'the scheduler failed', { cause: error });
    for (const op of this.state.queuedOps()) this.finish(op, { kind: 'error', error: failure });
  }

  /** The caller went away: a queued op drops it (and, with no caller left, is answered and goes). */
  #watchAbort(op: PendingOp, waiter: Waiter, signal: CallerSignal | undefined): void {
    signal?.addEventListener(
      'abort',
      () => {
        const left = this.state.dropWaiter(op, waiter);
        if (left === 'not-waiting') return; // already sent: its answer will simply find nobody
        waiter.resolve({ kind: 'error', error: callerGone() });
        if (left === 'nobody-waits') this.finish(op, { kind: 'error', error: callerGone() });
      },
      { once: true },
    );
  }
}

/** Identical reads of one credential collapse under this key. */
function readKeyOf(credential: string, op: Submission['op']): string {
  // Carried headers change the answer (Graph's ConsistencyLevel), so they are part of the key.
  const carried = op.headers ? JSON.stringify(Object.entries(op.headers).sort()) : '';
  // A read with a body (a JSON-RPC call is a POST whose body names the method, params and the
  // caller's id) is identical only to the same body: callers collapse only when even their ids
  // match, so each one's answer carries its own id. REST reads (GETs) have none.
  return `${credential}\n${op.path}\n${new URLSearchParams(op.query).toString()}\n${op.apiVersion ?? ''}\n${op.search ?? ''}\n${carried}\n${op.body ?? ''}`;
}

function circuitError(appId: string, waitMs: number): ProxyError | undefined {
  if (waitMs <= 0) return undefined;
  return new ProxyError('PROXY_CIRCUIT_OPEN', `the upstream failed repeatedly for app ${appId}`, {
    retryAfterSec: Math.max(1, Math.ceil(waitMs / 1000)),
  });
}
