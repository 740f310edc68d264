// One app inside the engine: its ops (app-state.ts), its two budgets, its pump, and what happens to
// an upstream call from the moment its ops leave to their answers. The pump's one step: plan, pick a
// lane, take a token, send.

import type { BatchPlan } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { bucketKey, type Decision, type Waiting } from '../ratelimit/limiter.js';
import { applyOutcome, deadlineError, withQueueTime } from './answer.js';
import { AppState } from './app-state.js';
import type { CircuitState } from './breaker.js';
import { Budget, type BudgetName } from './budget.js';
import type { SchedulerConfig } from './config.js';
import { dispatch } from './dispatch.js';
import type { FailureDomains } from './domains.js';
import type { Answer, Lane, PendingOp } from './op.js';
import { classify, longestRetryAfter, type Outcome, opsThrottled, throttledAppWide } from './outcome.js';
import { type Action, decide, type Flush, holdMs, type Plan, plan } from './planner.js';
import { Pump, type StepResult } from './pump.js';
import { isIdempotent, pauseMs } from './retry.js';

/** Ops are flushed this long before their deadline at the latest, whatever the hold says. */
const DEADLINE_MARGIN_MS = 50;

/** A denied budget that said no usable wait is asked again after its interval, and no sooner than this. */
const MIN_POLL_MS = 20;

/** What the apps share: the configuration and the engine-wide bookkeeping. */
export interface EngineShared {
  readonly config: SchedulerConfig;
  /** Breakers, pauses and suspect resources per group and resource (SPEC §8d). */
  readonly domains: FailureDomains;
  readonly draining: () => boolean;
  readonly nextCallId: () => number;
  /** An op was answered (the engine may have become idle). */
  readonly answered: () => void;
}

export class AppEngine {
  readonly state: AppState;
  readonly batch: Budget;
  readonly rest: Budget | undefined;
  readonly pump: Pump;
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
    this.pump = new Pump(
      c.clock,
      (timerAt) => this.#step(timerAt),
      (error) => this.#pumpCrashed(error),
    );
    const budget = (name: BudgetName, limit = c.batchLimit) =>
      new Budget(name, bucketKey(c.upstreamId, appId, name), limit, {
        limiter: c.limiter,
        clock: c.clock,
        leaseMs: c.leaseMs,
        observe: (granted, waitMs) => c.observer?.onLimiter?.({ appId, bucket: name, granted, waitMs }),
        wake: () => this.pump.kick(),
      });
    this.batch = budget('batch');
    this.rest = c.restLimit ? budget('rest', c.restLimit) : undefined;
  }

  /**
   * Nothing queued, in flight or paced that a fresh AppEngine would not have: it may go, on idleness
   * alone (SPEC §8d). Breakers and pauses live in the engine's bounded domains, where an app made
   * anew finds them again.
   */
  isFresh(now: number): boolean {
    return (
      this.state.isIdle && this.batch.isFresh(now) && (this.rest?.isFresh(now) ?? true) && this.pump.isIdle
    );
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
    for (const op of this.state.queuedOps()) {
      if (op.suspect || !resources.has(op.resource)) continue;
      op.suspect = true;
      if (!isIdempotent(op.op.method)) op.batchCap = 1;
    }
  }

  /** OpSink: the op got a usable answer. */
  cleared(op: PendingOp): void {
    this.#domains.cleared(this.appId, op.resource);
  }

  budget(name: BudgetName): Budget | undefined {
    return name === 'batch' ? this.batch : this.rest;
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
    this.pump.kick();
    this.shared.answered();
  }

  /**
   * A new op is queued. While every lane stays closed for longer than a window, it cannot leave
   * before they reopen (and the pass then plans it): unless it is due by then, nothing is planned
   * now. An arrival then costs O(1), not a plan over every group queued (SPEC §8d: a planning pass
   * costs O(groups ready to leave)).
   */
  arrived(op: PendingOp): void {
    const now = this.#c.clock.now();
    const opensAt = this.#opensAt();
    // Due before its lanes (or its group's pause) open, it is answered at once by a pass.
    const leavesAt = Math.max(opensAt, this.#domains.pausedUntil(this.appId, op.credential, now));
    if (
      opensAt > now + this.#c.windowMs &&
      op.deadline > leavesAt + DEADLINE_MARGIN_MS &&
      !this.shared.draining()
    )
      this.pump.wakeBy(opensAt);
    else this.pump.kick();
  }

  /** OpSink: ops of a call go back to their queues (a 429, a retry, a split batch). */
  requeue(ops: PendingOp[], notBefore: number, reason: '429' | '424' | 'retry' | 'split'): void {
    for (const op of ops) this.state.requeue(op, notBefore);
    this.#c.observer?.onRequeue?.({ appId: this.appId, reason, count: ops.length });
    this.pump.kick();
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
    const closedUntil = this.#closedUntil(now);
    const domains = this.#domains;
    const appId = this.appId;
    const planned = plan(this.state, now, {
      windowNow,
      windowMs: c.windowMs,
      maxOps: c.maxOps,
      draining,
      holdMs: draining ? 0 : holdMs(this.batch.tokensAt(now), c.batchLimit.burst, this.batch.interval),
      leadMs: DEADLINE_MARGIN_MS + this.batch.interval,
      maxBytes: c.maxBatchBytes,
      closedUntil,
      chains: c.dialect.serialChains === true && c.dependsOnChains !== false,
      pausedUntil: (credential) => domains.pausedUntil(appId, credential, now),
    });
    if (this.#shed(planned, now, closedUntil)) return true;
    // A group whose half-open breaker has its probe out waits for the probe's answer (it kicks).
    const sendable = planned.flushes.every((f) => domains.canCall(appId, f.credential, now))
      ? planned
      : { ...planned, flushes: planned.flushes.filter((f) => domains.canCall(appId, f.credential, now)) };
    const action = decide(sendable.flushes, this.#lanes(now, undefined));
    if (action.kind === 'none') {
      const at = this.#wakeAt(sendable, now, undefined);
      // Every lane closed for longer than a window: until one is asked again (its reopening, or the
      // poll that finds another replica's lease released), windows ending are no event — a pass
      // each would plan every group again (SPEC §8d: O(groups ready to leave)). Ops falling due
      // meanwhile were shed above (due by `closedUntil`) or are at most one poll late.
      const opensAt = this.#opensAt();
      if (opensAt <= now + c.windowMs) return at;
      return Math.min(Math.max(at, opensAt), sendable.nextDeadline);
    }
    return this.#take(sendable, action, now);
  }

  /**
   * Takes a token for the first action a lane allows, then sends it; a denied budget is not asked
   * again. The plan's other ready groups follow in turn while tokens last, without planning again:
   * a pass costs one plan per burst of calls, not one per call.
   */
  async #take(planned: Plan, first: Exclude<Action, { kind: 'none' }>, at: number): Promise<StepResult> {
    const c = this.#c;
    let action: Action = first;
    const flushes = planned.flushes;
    // The plan's flushes not yet considered (the first action is the first flush's, or an op's).
    let i = 0;
    /** Where the flushes still to send begin: the current action's. */
    let start = 0;
    let denied: Set<Budget> | undefined; // made on the first denial only
    let sent = false;
    // The lanes are judged at `now`, and so is the wake-up: a lane closed then counts as an event
    // even when it has opened since (an await may end after a block).
    let now = at;
    for (;;) {
      if (action.kind === 'none') return sent || this.#wakeAt(planned, now, denied);
      // Half-open: one probe at a time per group; its answer (or its end) kicks the pump again.
      const credential = action.kind === 'batch' ? action.flush.credential : action.op.credential;
      if (!this.#domains.mayCall(this.appId, credential, c.clock.now())) return sent || planned.wakeAt;
      const budget = action.kind === 'batch' ? this.batch : (this.budget(action.budget) ?? this.batch);
      const decision = await budget.acquire(this.waiting());
      now = c.clock.now();
      if (!decision.granted) {
        this.#domains.released(this.appId, credential, now);
        denied ??= new Set();
        denied.add(budget);
        // The flushes not yet sent whose group may still send (an answer during the await may
        // have paused it): never one already sent, or a token would go for nothing.
        const left = flushes
          .slice(start)
          .filter(
            (f) =>
              f.ops[0]?.state === 'queued' && this.#domains.pausedUntil(this.appId, f.credential, now) <= now,
          );
        action = decide(left, this.#lanes(now, denied));
        continue;
      }
      this.#send(action, budget, decision);
      sent = true;
      // The next group in turn, skipping the one just sent and any paused or probing since the plan
      // (an answer may have come during the await): O(1) per call, not a look at every flush.
      const single = action.kind === 'single' ? action.op : undefined;
      const gone = action.kind === 'batch' ? action.flush : undefined;
      let next: Flush | undefined;
      while (i < flushes.length && next === undefined) {
        const f = flushes[i++] as Flush;
        if (f === gone || f.ops[0] === single) continue;
        if (this.#domains.pausedUntil(this.appId, f.credential, now) > now) continue;
        if (this.#domains.canCall(this.appId, f.credential, now)) {
          next = f;
          start = i - 1;
        }
      }
      action = next ? decide([next], this.#lanes(now, denied)) : { kind: 'none' };
    }
  }

  /**
   * Answers at once what cannot leave: ops past their deadline, ops due before any lane (or their
   * group's pause) can open, with the real wait as Retry-After, and everything queued in a group
   * whose breaker is open.
   */
  #shed(planned: Plan, now: number, closedUntil: number): boolean {
    let shed = false;
    for (const op of [...planned.expired, ...planned.doomed]) {
      const opensAt = Math.max(closedUntil, this.#domains.pausedUntil(this.appId, op.credential, now));
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

  /** When a lane is asked again at the earliest: its reopening, or the poll after a denial. */
  #opensAt(): number {
    return this.rest ? Math.min(this.batch.blockedUntil, this.rest.blockedUntil) : this.batch.blockedUntil;
  }

  /** A time before which no lane surely sends: the batch lane's, or the later of both lanes'. */
  #closedUntil(_now: number): number {
    return this.rest ? Math.min(this.batch.closedUntil, this.rest.closedUntil) : this.batch.closedUntil;
  }

  #lanes(now: number, denied: ReadonlySet<Budget> | undefined) {
    const open = (b: Budget | undefined) => b !== undefined && !denied?.has(b) && b.isOpen(now);
    return {
      batchOpen: open(this.batch),
      batchClosedForMs: (this.#askAgainAt(this.batch, now, denied) ?? now) - now,
      hasRest: this.rest !== undefined,
      restOpen: open(this.rest),
      windowMs: this.#c.windowMs,
      singleOpDirect: this.#c.singleOpDirect,
    };
  }

  /**
   * When to look again: the plan's next event, or a closed budget opening. A budget already open
   * (the rest lane, unused while the batch lane reopens within a window) is no event. A budget this
   * pass was denied whose wait was already over by this look (a turn denial of 0 ms; a wait shorter
   * than the pass) is asked again one poll on — never left to the other lane's reopening or the
   * plan's next event (a deadline).
   */
  #wakeAt(planned: Plan, now: number, denied: ReadonlySet<Budget> | undefined): number {
    if (planned.flushes.length === 0) return planned.wakeAt;
    let at = planned.wakeAt;
    for (const budget of [this.batch, this.rest]) {
      const again = budget && this.#askAgainAt(budget, now, denied);
      if (again !== undefined) at = Math.min(at, again);
    }
    return at;
  }

  /**
   * When a budget is worth asking again, as of `now` (undefined: it is open): when its block ends,
   * or — denied in this pass with a wait already over — one poll on.
   */
  #askAgainAt(budget: Budget, now: number, denied: ReadonlySet<Budget> | undefined): number | undefined {
    if (budget.blockedUntil > now) return budget.blockedUntil;
    if (denied?.has(budget)) return now + Math.max(MIN_POLL_MS, budget.interval);
    return undefined;
  }

  /** Sends what the action says, with the ops still queued after the acquire's await. */
  #send(action: Exclude<Action, { kind: 'none' }>, budget: Budget, decision: Decision): void {
    const ops = (action.kind === 'batch' ? action.flush.ops : [action.op]).filter(
      (op) => op.state === 'queued',
    );
    const first = ops[0];
    if (!first) {
      const credential = action.kind === 'batch' ? action.flush.credential : action.op.credential;
      this.#domains.released(this.appId, credential, this.#c.clock.now());
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
    this.#call(lane, first.credential, ops, budget, decision, plan).catch((error: unknown) =>
      this.#crashed(first.credential, ops, error),
    );
  }

  async #call(
    lane: Lane,
    credential: string,
    ops: PendingOp[],
    budget: Budget,
    decision: Decision,
    plan: BatchPlan,
  ): Promise<void> {
    const c = this.#c;
    this.state.leave(ops);
    this.state.served(credential);
    this.#domains.sent(this.appId, credential, c.clock.now());
    // The upstream counts batched ops against the single-call budget too: pay for them, in one call.
    if (lane === 'batch' && c.batchOpsSpendRest && this.rest) void this.rest.charge(ops.length);
    const sent = await dispatch(c, this.appId, lane, credential, ops, plan);
    const { result } = sent;
    c.observer?.onUpstream?.({
      appId: this.appId,
      lane,
      status: result instanceof ProxyError ? 'error' : result.status,
      ms: sent.answeredAt - sent.sentAt,
    });
    const outcome = classify(c.dialect, lane, ops.length, result, plan);
    // The upstream took the credential (it refuses a bad one whole, before any op runs).
    if (!(result instanceof ProxyError) && result.status < 400)
      this.#domains.accepted(this.appId, credential, c.clock.now());
    // A 429 pauses its scope before the settle, so the settle's reopen time includes the pause.
    await this.#throttled(lane, credential, outcome, budget);
    void budget.settle(decision, this.waiting());
    const now = c.clock.now();
    // A poisoned op's failures count too (the upstream down looks the same at first); bisection
    // (answer.ts) gets the others their answers, whose successes reset the count.
    if (outcome.kind === 'failed') this.#domains.failed(this.appId, credential, now, sent.sentAt);
    else if (outcome.kind === 'throttled') this.#domains.released(this.appId, credential, now, sent.sentAt);
    // A 200 batch with ops throttled inside is no recovery for the group's own pace.
    else this.#domains.succeeded(this.appId, credential, now, !opsThrottled(outcome));
    const call = {
      lane,
      ops,
      sentAt: sent.sentAt,
      answeredAt: sent.answeredAt,
      callId: this.shared.nextCallId(),
    };
    // One pass after all the call's answers and requeues, not one per op.
    this.pump.hold(() =>
      applyOutcome(this, outcome, call, { now, maxAttempts: c.maxAttempts, random: c.random }),
    );
  }

  /**
   * SPEC §8d, a throttle pauses what was throttled. A whole batch call's 429 is the app's batch
   * bucket (the fleet's, through the limiter). A single call's 429, and ops throttled inside a 200
   * batch, pause the scope the dialect says its 429s mean: the app's bucket, or the group's
   * credential alone (Graph throttles per user and mailbox) — by the longest Retry-After among them
   * ("retry all the failed requests in a new batch after the longest retry-after value"). The same
   * throttle on several groups at once is the app's: its bucket pauses too.
   */
  async #throttled(lane: Lane, credential: string, outcome: Outcome, budget: Budget): Promise<void> {
    const c = this.#c;
    let ms: number | undefined;
    if (outcome.kind === 'throttled') {
      const { headers } = outcome.response;
      ms = pauseMs(headers['retry-after'], Date.now(), c.maxRetryAfterMs);
      const scope = c.dialect.throttleScopeOf?.(c.dialect.answerHeaders(headers)) ?? c.dialect.throttleScope;
      if (lane === 'batch' || scope !== 'credential') return budget.pause(ms);
    } else {
      ms = longestRetryAfter(outcome, Date.now(), c.maxRetryAfterMs);
      if (ms === undefined) return;
      // The upstream named a scope as wide as the app (x-ms-throttle-scope): the app's bucket.
      if (c.dialect.throttleScope !== 'credential' || throttledAppWide(outcome)) return budget.pause(ms);
    }
    const now = c.clock.now();
    this.#domains.pause(this.appId, credential, now + ms, now);
    if (this.#domains.pausedGroups(this.appId, now) >= this.#domains.appWideGroups) await budget.pause(ms);
  }

  /** A bug while sending or answering: every op of the call still unanswered gets a 500. */
  #crashed(credential: string, ops: readonly PendingOp[], error: unknown): void {
    this.#domains.released(this.appId, credential, this.#c.clock.now());
    const failure = new ProxyError('PROXY_INTERNAL', 'the proxy failed to answer this call', {
      cause: error,
    });
    this.pump.hold(() => {
      for (const op of ops) this.finish(op, { kind: 'error', error: failure });
    });
  }

  /** A bug in the pump: answer what is queued rather than leave callers hanging. */
  #pumpCrashed(error: unknown): void {
    const failure = new ProxyError('PROXY_INTERNAL', 'the scheduler failed', { cause: error });
    for (const op of this.state.queuedOps()) this.finish(op, { kind: 'error', error: failure });
  }
}

function circuitError(appId: string, waitMs: number): ProxyError | undefined {
  if (waitMs <= 0) return undefined;
  return new ProxyError('PROXY_CIRCUIT_OPEN', `the upstream failed repeatedly for app ${appId}`, {
    retryAfterSec: Math.max(1, Math.ceil(waitMs / 1000)),
  });
}
