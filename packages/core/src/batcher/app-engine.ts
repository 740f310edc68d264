// One app inside the engine: its ops (app-state.ts), its two budgets, its pump, and what happens to
// an upstream call from the moment its ops leave to their answers. The pump's one step: plan, pick a
// lane, take a token, send.

import type { BatchPlan } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { bucketKey, type Decision, type Waiting } from '../ratelimit/limiter.js';
import { applyOutcome, deadlineError, withQueueTime } from './answer.js';
import { AppState } from './app-state.js';
import { CircuitBreaker } from './breaker.js';
import { Budget, type BudgetName } from './budget.js';
import type { SchedulerConfig } from './config.js';
import { dispatch } from './dispatch.js';
import type { Answer, Lane, PendingOp } from './op.js';
import { classify, longestRetryAfter } from './outcome.js';
import { type Action, decide, holdMs, type Plan, plan } from './planner.js';
import { Pump, type StepResult } from './pump.js';
import { pauseMs } from './retry.js';

/** Ops are flushed this long before their deadline at the latest, whatever the hold says. */
const DEADLINE_MARGIN_MS = 50;

/** A denied budget that said no usable wait is asked again after its interval, and no sooner than this. */
const MIN_POLL_MS = 20;

/** What the apps share: the configuration and the engine-wide bookkeeping. */
export interface EngineShared {
  readonly config: SchedulerConfig;
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
  readonly breaker: CircuitBreaker;
  readonly #c: SchedulerConfig;

  constructor(
    readonly appId: string,
    private readonly shared: EngineShared,
  ) {
    const c = shared.config;
    this.#c = c;
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
    this.breaker = new CircuitBreaker(c.breaker, (state) => {
      c.onCircuit?.({ appId, state });
      this.pump.kick();
    });
  }

  /** Nothing queued, in flight or remembered that a fresh AppEngine would not have: it may go. */
  isFresh(now: number): boolean {
    return (
      this.state.isIdle &&
      this.breaker.isFresh &&
      this.batch.isFresh(now) &&
      (this.rest?.isFresh(now) ?? true) &&
      this.pump.isIdle
    );
  }

  /** The error a call gets while the app's breaker is open, or undefined when it is not. */
  circuitOpen(now: number): ProxyError | undefined {
    const waitMs = this.breaker.retryInMs(now);
    if (waitMs <= 0) return undefined;
    return new ProxyError('PROXY_CIRCUIT_OPEN', `the upstream failed repeatedly for app ${this.appId}`, {
      retryAfterSec: Math.max(1, Math.ceil(waitMs / 1000)),
    });
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
    const circuit = this.circuitOpen(now);
    const closedUntil = this.#closedUntil(now);
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
    });
    if (this.#shed(planned, now, circuit, closedUntil)) return true;
    const action = decide(planned.flushes, this.#lanes(now, undefined));
    if (action.kind === 'none') return this.#wakeAt(planned, now, undefined);
    return this.#take(planned, action, now);
  }

  /** Takes a token for the first action a lane allows, then sends it; a denied budget is not asked again. */
  async #take(planned: Plan, first: Exclude<Action, { kind: 'none' }>, at: number): Promise<StepResult> {
    const c = this.#c;
    let action: Action = first;
    let denied: Set<Budget> | undefined; // made on the first denial only
    // The lanes are judged at `now`, and so is the wake-up: a lane closed then counts as an event
    // even when it has opened since (an await may end after a block).
    let now = at;
    for (;;) {
      if (action.kind === 'none') return this.#wakeAt(planned, now, denied);
      // Half-open: one probe at a time; its answer (or its end) kicks the pump again.
      if (!this.breaker.mayCall(c.clock.now())) return planned.wakeAt;
      const budget = action.kind === 'batch' ? this.batch : (this.budget(action.budget) ?? this.batch);
      const decision = await budget.acquire(this.waiting());
      if (!decision.granted) {
        this.breaker.released();
        denied ??= new Set();
        denied.add(budget);
        now = c.clock.now();
        action = decide(planned.flushes, this.#lanes(now, denied));
        continue;
      }
      this.#send(action, budget, decision);
      return true;
    }
  }

  /**
   * Answers at once what cannot leave: ops past their deadline, ops due before any lane can open
   * (with the real wait as Retry-After), and everything queued while the breaker is open.
   */
  #shed(planned: Plan, now: number, circuit: ProxyError | undefined, closedUntil: number): boolean {
    if (!circuit && planned.expired.length === 0 && planned.doomed.length === 0) return false;
    const shed = circuit ? this.state.queuedOps() : [...planned.expired, ...planned.doomed];
    for (const op of shed) {
      const error =
        circuit ??
        (op.deadline <= now ? deadlineError(this.batch.interval) : deadlineError(closedUntil - now));
      // Queued ops the breaker sheds are answered through onAnswer; the door's refusals are onShed.
      if (!circuit) this.#c.observer?.onShed?.({ appId: this.appId, code: 'PROXY_DEADLINE_EXCEEDED' });
      this.finish(op, { kind: 'error', error });
    }
    return shed.length > 0;
  }

  /** A time before which no lane surely sends: the batch lane's, or the later of both lanes'. */
  #closedUntil(now: number): number {
    const lanes = this.rest
      ? Math.min(this.batch.closedUntil, this.rest.closedUntil)
      : this.batch.closedUntil;
    return Math.max(lanes, now + this.breaker.retryInMs(now));
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
      this.breaker.released();
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
      this.#crashed(ops, error),
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
    // A 429 pauses the bucket before the settle, so the settle's reopen time includes the pause. Ops
    // throttled inside a 200 batch pause it too, by the longest Retry-After among them (Graph: "retry
    // all the failed requests in a new batch after the longest retry-after value").
    if (outcome.kind === 'throttled') {
      await budget.pause(pauseMs(outcome.response.headers['retry-after'], Date.now(), c.maxRetryAfterMs));
    } else {
      const longest = longestRetryAfter(outcome, Date.now(), c.maxRetryAfterMs);
      if (longest !== undefined) await budget.pause(longest);
    }
    void budget.settle(decision, this.waiting());
    const now = c.clock.now();
    if (outcome.kind === 'failed') this.breaker.failed(now, sent.sentAt);
    else if (outcome.kind === 'throttled') this.breaker.released();
    else this.breaker.succeeded();
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

  /** A bug while sending or answering: every op of the call still unanswered gets a 500. */
  #crashed(ops: readonly PendingOp[], error: unknown): void {
    this.breaker.released();
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
