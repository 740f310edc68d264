// The engine's heart: holds each caller's op for a short window, packs ops that may travel together
// into upstream batch calls, spends the two upstream budgets (batch calls and single calls, SPEC §7b)
// and answers every caller exactly once.
//
// Scheduling decisions, in the order the pump makes them for one app:
//  1. Expire: a queued op past its deadline is answered 503 (it could not be sent in time).
//  2. Eligible: an op may leave only when no earlier unanswered op of the same app conflicts with it
//     (resources.ts). That one rule keeps arrival order per resource across batches, lanes and
//     credentials, and never puts two conflicting ops in one batch (the upstream runs a batch's ops in
//     any order).
//  3. Ready: a group (app + credential) flushes when it has a full batch of eligible ops, or when its
//     oldest eligible op has waited the window plus the token-economy hold (below).
//  4. Batch lane first: one batch token buys up to maxOps ops. Ops leave oldest first.
//  5. Single lane when the batch lane cannot serve soon enough: while the batch bucket says wait
//     longer than the window and the rest bucket has tokens, the oldest eligible ops leave as single
//     direct calls. Under overload this adds the whole single-call budget to the batch budget.
//
// Token economy: a batch token is worth up to maxOps ops. While the batch bucket holds plenty of
// tokens, a partial batch leaves when the window ends (latency first). When fewer than a tenth of the
// burst is left, a partial batch is held longer, up to one token interval when the bucket is empty,
// so tokens are spent on fuller batches (throughput first) — never past an op's deadline. A bucket
// whose burst is below 10 has no reserve to manage: the pacing itself makes batches fill.
//
// Nothing here waits on a caller: the pump is re-run on every arrival, answer and timer, one pump at
// a time per app, and one timer per app (not per op).

import type { SpanContext } from '@opentelemetry/api';
import type { BatchDialect, OpRequest, UpstreamRequest } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { intervalMs as intervalMsOf } from '../ratelimit/gcra.js';
import {
  type BucketLimit,
  bucketKey,
  type Decision,
  type Limiter,
  type Waiting,
} from '../ratelimit/limiter.js';
import { endUpstreamSpan, startUpstreamSpan } from '../telemetry/tracing.js';
import type { BufferedResponse } from '../upstream/client.js';
import { GroupQueue } from './group-queue.js';
import { type Answer, isWriteMethod, type Lane, type PendingOp, type Timing, type Waiter } from './op.js';
import { ResourceIndex } from './resources.js';

export interface UpstreamTransport {
  call(request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse>;
}

export type FlushReason = 'full' | 'window' | 'hold' | 'drain';

/** Hooks for metrics and traces; every one optional, all synchronous and cheap. */
export interface SchedulerObserver {
  onFlush?(e: { appId: string; lane: Lane; size: number; reason: FlushReason | 'single-lane' }): void;
  onUpstream?(e: { appId: string; lane: Lane; status: number | 'error'; ms: number }): void;
  onAnswer?(e: { appId: string; lane: Lane | undefined; status: number; queueMs: number }): void;
  onCollapsed?(e: { appId: string }): void;
  onShed?(e: { appId: string; code: 'PROXY_QUEUE_FULL' | 'PROXY_DEADLINE_EXCEEDED' }): void;
  onLimiter?(e: { appId: string; bucket: 'batch' | 'rest'; granted: boolean; waitMs: number }): void;
  onRequeue?(e: { appId: string; reason: '429' | 'retry'; count: number }): void;
}

export interface SchedulerOptions {
  readonly dialect: BatchDialect;
  readonly limiter: Limiter;
  readonly upstream: UpstreamTransport;
  /** Identifies the upstream in bucket keys shared by the fleet. */
  readonly upstreamId: string;
  readonly windowMs: number;
  readonly maxOps: number;
  readonly maxWaitMs: number;
  readonly queueMaxOps: number;
  readonly batchLimit: BucketLimit;
  /** The single-call budget; undefined = not configured (no single lane, pass-through unpaced). */
  readonly restLimit: BucketLimit | undefined;
  readonly batchOpsSpendRest: boolean;
  /** A flush that would carry one op leaves as a single direct call instead. */
  readonly singleOpDirect: boolean;
  /**
   * How long a grant that empties a bucket may keep it closed waiting for its answer (see Lease in
   * limiter.ts): the upstream timeout plus a margin.
   */
  readonly leaseMs: number;
  /** Upstream calls an idempotent op may take after a 5xx, reset or timeout (1 = no retry). */
  readonly maxAttempts: number;
  /** The Authorization header value the upstream call carries for a group's credential. */
  readonly authorize: (appId: string, credential: string) => string | undefined;
  readonly now?: () => number;
  readonly observer?: SchedulerObserver;
  readonly random?: () => number;
}

export interface Submission {
  readonly appId: string;
  readonly credential: string;
  readonly op: OpRequest;
  /** Aborted when the caller goes away; an op not yet sent is then dropped. */
  readonly signal?: AbortSignal;
  /** The caller's server span: the upstream call's span links to it. */
  readonly spanContext?: SpanContext;
}

interface AppState {
  readonly appId: string;
  readonly batchKey: string;
  readonly restKey: string;
  readonly groups: Map<string, GroupQueue>;
  readonly index: ResourceIndex;
  /** Queued (not in flight) reads by collapse key. */
  readonly reads: Map<string, PendingOp>;
  queued: number;
  inflight: number;
  /** Ops in upstream calls not yet answered. */
  readonly flying: Set<PendingOp>;
  batchBlockedUntil: number;
  restBlockedUntil: number;
  /** Last word from the batch bucket, for the token economy. */
  batchTokens: { remaining: number; at: number };
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  pumping: boolean;
  repump: boolean;
}

interface Candidate {
  readonly group: GroupQueue;
  readonly ops: PendingOp[];
  readonly reason: FlushReason;
}

const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE']);
const DEFAULT_429_PAUSE_MS = 1000;
/** Ops are flushed this long before their deadline at the latest, whatever the hold says. */
const DEADLINE_MARGIN_MS = 50;

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #apps = new Map<string, AppState>();
  readonly #byKey = new Map<string, { app: AppState; bucket: 'batch' | 'rest' }>();
  #seq = 0;
  /** Whether other replicas share the limiter (it tells of reopenings). */
  readonly #shared: boolean;
  #callIds = 1;
  #draining = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: SchedulerOptions) {
    if (options.maxOps < 1 || options.maxOps > options.dialect.maxOps) {
      throw new TypeError(
        `maxOps must be between 1 and ${options.dialect.maxOps} for ${options.dialect.name}`,
      );
    }
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#shared = options.limiter.onReopen !== undefined;
    options.limiter.onReopen?.((key, inMs) => this.#reopened(key, inMs));
  }

  /**
   * A call was answered (any replica's): come back exactly when its bucket opens for this replica, not
   * at a poll. The limiter serves replicas in their oldest ops' arrival order, and tells the others
   * a grace later.
   */
  #reopened(key: string, inMs: number): void {
    const entry = this.#byKey.get(key);
    if (!entry) return;
    const { app, bucket } = entry;
    if (app.queued === 0) return;
    // The freshest word on the bucket: it replaces an earlier look-again time (a denial's poll).
    const at = this.#now() + inMs;
    setBlockedUntil(app, bucket, at);
    if (inMs <= 0) this.#pump(app);
    else this.#arm(app, at);
  }

  /** Queues one caller's op; resolves with its one answer. Never rejects. */
  submit(sub: Submission): Promise<Answer> {
    const now = this.#now();
    const app = this.#app(sub.appId);
    return new Promise<Answer>((resolve) => {
      if (sub.signal?.aborted) {
        resolve({ kind: 'error', error: new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away') });
        return;
      }
      const waiter: Waiter = { arrivedAt: now, resolve, spanContext: sub.spanContext };
      const isWrite = isWriteMethod(sub.op.method);
      const readKey = isWrite ? undefined : readKeyOf(sub.credential, sub.op);

      // Read collapsing: an identical queued read takes this caller too, unless a write to its
      // resource arrived after it (this caller must see that write).
      if (readKey !== undefined) {
        const existing = app.reads.get(readKey);
        if (existing?.state === 'queued' && !app.index.hasLaterWrite(existing)) {
          existing.waiters.push(waiter);
          this.#watchAbort(app, existing, waiter, sub.signal);
          this.#o.observer?.onCollapsed?.({ appId: app.appId });
          return;
        }
      }

      if (app.queued >= this.#o.queueMaxOps) {
        this.#o.observer?.onShed?.({ appId: app.appId, code: 'PROXY_QUEUE_FULL' });
        resolve({
          kind: 'error',
          error: new ProxyError('PROXY_QUEUE_FULL', `the queue for app ${sub.appId} is full`, {
            retryAfterSec: Math.max(1, Math.ceil(intervalMsOf(this.#o.batchLimit) / 1000)),
          }),
        });
        return;
      }

      const op: PendingOp = {
        seq: this.#seq++,
        appId: sub.appId,
        credential: sub.credential,
        op: sub.op,
        isWrite,
        readKey,
        enqueuedAt: now,
        deadline: now + this.#o.maxWaitMs,
        notBefore: 0,
        state: 'queued',
        attempts: 0,
        waiters: [waiter],
      };
      let group = app.groups.get(sub.credential);
      if (!group) {
        group = new GroupQueue(sub.credential);
        app.groups.set(sub.credential, group);
      }
      group.push(op);
      app.index.add(op);
      app.queued++;
      if (readKey !== undefined) app.reads.set(readKey, op);
      this.#watchAbort(app, op, waiter, sub.signal);
      this.#pump(app);
    });
  }

  /**
   * Waits for a token of an app's bucket for a call that bypasses the queue (pass-through, or the
   * client's own batch call). Resolves with a function to call once the call is answered, or with
   * the error to answer when no token comes before the deadline.
   */
  async admit(
    appId: string,
    bucket: 'batch' | 'rest',
    signal?: AbortSignal,
  ): Promise<(() => void) | ProxyError> {
    const limit = bucket === 'batch' ? this.#o.batchLimit : this.#o.restLimit;
    if (!limit) return () => {};
    const app = this.#app(appId);
    const key = bucket === 'batch' ? app.batchKey : app.restKey;
    const started = this.#now();
    const deadline = started + this.#o.maxWaitMs;
    for (;;) {
      if (signal?.aborted) return new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away');
      const decision = await this.#acquire(app, bucket, key, limit, { waitedMs: this.#now() - started });
      if (decision.granted) return () => this.#settle(app, bucket, decision);
      const now = this.#now();
      if (now + decision.retryAfterMs > deadline) {
        this.#o.observer?.onShed?.({ appId, code: 'PROXY_DEADLINE_EXCEEDED' });
        return deadlineError(decision.retryAfterMs);
      }
      await delay(this.#blockedUntil(now, decision.retryAfterMs, limit) - now);
    }
  }

  /** Flushes everything queued without waiting for windows; resolves when every op is answered. */
  drain(): Promise<void> {
    this.#draining = true;
    for (const app of this.#apps.values()) this.#pump(app);
    return this.idle();
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Answers every op still queued with `error` (the end of a shutdown grace period). */
  abandon(error: ProxyError): void {
    for (const app of this.#apps.values()) {
      for (const group of app.groups.values()) {
        for (const op of [...group.queued()]) this.#finish(app, op, { kind: 'error', error });
      }
      // Calls already upstream: their callers are answered now; a late upstream answer finds nobody.
      for (const op of [...app.flying]) this.#finish(app, op, { kind: 'error', error });
    }
  }

  /** A bug while sending or answering: every op of the call still unanswered gets a 500. */
  #crashed(app: AppState, ops: readonly PendingOp[], error: unknown): void {
    const failure = new ProxyError('PROXY_INTERNAL', 'the proxy failed to answer this call', {
      cause: error,
    });
    for (const op of ops) this.#finish(app, op, { kind: 'error', error: failure });
  }

  get pending(): number {
    let n = 0;
    for (const app of this.#apps.values()) n += app.queued + app.inflight;
    return n;
  }

  /** Per-app queue depths, for metrics and the status page. */
  snapshot(): Array<{ appId: string; queued: number; inflight: number; batchTokens: number }> {
    return [...this.#apps.values()].map((a) => ({
      appId: a.appId,
      queued: a.queued,
      inflight: a.inflight,
      batchTokens: a.batchTokens.remaining,
    }));
  }

  // ---- the pump -------------------------------------------------------------------------------

  #app(appId: string): AppState {
    let app = this.#apps.get(appId);
    if (!app) {
      app = {
        appId,
        batchKey: bucketKey(this.#o.upstreamId, appId, 'batch'),
        restKey: bucketKey(this.#o.upstreamId, appId, 'rest'),
        groups: new Map(),
        index: new ResourceIndex(),
        reads: new Map(),
        queued: 0,
        inflight: 0,
        flying: new Set(),
        batchBlockedUntil: 0,
        restBlockedUntil: 0,
        batchTokens: { remaining: this.#o.batchLimit.burst, at: this.#now() },
        timer: undefined,
        timerAt: Number.POSITIVE_INFINITY,
        pumping: false,
        repump: false,
      };
      this.#apps.set(appId, app);
      this.#byKey.set(app.batchKey, { app, bucket: 'batch' });
      this.#byKey.set(app.restKey, { app, bucket: 'rest' });
    }
    return app;
  }

  #pump(app: AppState): void {
    if (app.pumping) {
      app.repump = true;
      return;
    }
    app.pumping = true;
    this.#pumpLoop(app)
      .catch((error: unknown) => {
        // A bug, not a condition: answer what is queued rather than leave callers hanging.
        const failure = new ProxyError('PROXY_INTERNAL', 'the scheduler failed', { cause: error });
        for (const group of app.groups.values()) {
          for (const op of [...group.queued()]) this.#finish(app, op, { kind: 'error', error: failure });
        }
      })
      .finally(() => {
        app.pumping = false;
        if (app.repump) this.#pump(app);
      });
  }

  async #pumpLoop(app: AppState): Promise<void> {
    for (;;) {
      app.repump = false;
      const now = this.#now();
      const { candidates, wakeAt } = this.#survey(app, now);
      let sent = false;

      const batchOpen = now >= app.batchBlockedUntil;
      const candidate = batchOpen ? candidates[0] : undefined;
      if (candidate) {
        if (
          this.#o.singleOpDirect &&
          candidate.ops.length === 1 &&
          (await this.#trySingle(app, candidate.ops))
        ) {
          continue;
        }
        sent = await this.#tryBatch(app, candidate);
        if (sent) continue;
      }

      // The batch lane is closed for longer than a window: give the oldest eligible ops to the single
      // lane while its bucket has tokens.
      if (
        this.#o.restLimit &&
        candidates.length > 0 &&
        app.batchBlockedUntil - this.#now() > this.#o.windowMs &&
        this.#now() >= app.restBlockedUntil
      ) {
        const oldest = candidates.flatMap((c) => c.ops).sort((a, b) => a.seq - b.seq);
        if (await this.#trySingle(app, oldest)) continue;
      }

      if (app.repump) continue;
      let next = wakeAt;
      if (candidates.length > 0) {
        next = Math.min(next, app.batchBlockedUntil);
        if (this.#o.restLimit) next = Math.min(next, app.restBlockedUntil);
      }
      this.#arm(app, next);
      return;
    }
  }

  /** Expires late ops and finds the groups ready to flush, oldest first, and when to look again. */
  #survey(app: AppState, now: number): { candidates: Candidate[]; wakeAt: number } {
    const hold = this.#holdMs(app, now);
    const candidates: Candidate[] = [];
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const [credential, group] of app.groups) {
      // Deadlines follow arrival order, so the late ops are at the front.
      for (let front = group.front(); front && front.deadline <= now; front = group.front()) {
        this.#o.observer?.onShed?.({ appId: app.appId, code: 'PROXY_DEADLINE_EXCEEDED' });
        this.#finish(app, front, { kind: 'error', error: deadlineError(intervalMsOf(this.#o.batchLimit)) });
      }
      const front = group.front();
      if (!front) {
        app.groups.delete(credential);
        continue;
      }
      wakeAt = Math.min(wakeAt, front.deadline);

      const ops: PendingOp[] = [];
      for (const op of group.queued()) {
        if (op.notBefore > now) {
          wakeAt = Math.min(wakeAt, op.notBefore);
          continue;
        }
        if (app.index.isBlocked(op)) continue;
        ops.push(op);
        if (ops.length === this.#o.maxOps) break;
      }
      const oldest = ops[0];
      if (!oldest) continue;

      // The hold never keeps an op past the point where one more token interval would miss its deadline.
      const windowEnd = oldest.enqueuedAt + this.#o.windowMs;
      const latest = oldest.deadline - DEADLINE_MARGIN_MS - intervalMsOf(this.#o.batchLimit);
      const readyAt = Math.max(windowEnd, Math.min(windowEnd + hold, latest));
      let reason: FlushReason | undefined;
      if (this.#draining) reason = 'drain';
      else if (ops.length === this.#o.maxOps) reason = 'full';
      else if (now >= readyAt) reason = readyAt > windowEnd ? 'hold' : 'window';
      if (reason) candidates.push({ group, ops, reason });
      else wakeAt = Math.min(wakeAt, readyAt);
    }
    candidates.sort((a, b) => (a.ops[0]?.seq ?? 0) - (b.ops[0]?.seq ?? 0));
    return { candidates, wakeAt };
  }

  /** How much longer than the window a partial batch waits, by what is left in the batch bucket. */
  #holdMs(app: AppState, now: number): number {
    const { burst } = this.#o.batchLimit;
    const lowWater = Math.floor(burst / 10);
    if (lowWater === 0 || this.#draining) return 0;
    const interval = intervalMsOf(this.#o.batchLimit);
    const estimate = Math.min(burst, app.batchTokens.remaining + (now - app.batchTokens.at) / interval);
    const leftAfter = estimate - 1;
    if (leftAfter >= lowWater) return 0;
    return interval * (1 - Math.max(0, leftAfter) / lowWater);
  }

  async #tryBatch(app: AppState, candidate: Candidate): Promise<boolean> {
    const decision = await this.#acquire(app, 'batch', app.batchKey, this.#o.batchLimit, this.#waiting(app));
    const now = this.#now();
    if (!decision.granted) {
      app.batchTokens = { remaining: 0, at: now };
      app.batchBlockedUntil = this.#blockedUntil(now, decision.retryAfterMs, this.#o.batchLimit);
      return false;
    }
    app.batchTokens = { remaining: decision.remaining, at: now };
    if (decision.remaining === 0) {
      app.batchBlockedUntil = emptiedUntil(now, decision.settleAfterMs, this.#o.batchLimit);
    }
    // The acquire awaited: some ops may have left meanwhile (caller gone, expired).
    const ops = candidate.ops.filter((op) => op.state === 'queued');
    if (ops.length === 0) {
      this.#settle(app, 'batch', decision);
      return true;
    }
    this.#o.observer?.onFlush?.({
      appId: app.appId,
      lane: 'batch',
      size: ops.length,
      reason: candidate.reason,
    });
    this.#sendBatch(app, candidate.group.credential, ops, decision).catch((error: unknown) =>
      this.#crashed(app, ops, error),
    );
    return true;
  }

  /** Sends the first op of `ops` that is still queued on the single lane; false when no rest token. */
  async #trySingle(app: AppState, ops: PendingOp[]): Promise<boolean> {
    const limit = this.#o.restLimit;
    // Without a rest bucket the single lane is not paced: a grant that settles nothing.
    let decision: Decision = {
      granted: true,
      remaining: 0,
      settleAfterMs: Number.POSITIVE_INFINITY,
      grant: { baseTat: '0' },
    };
    if (limit) {
      decision = await this.#acquire(app, 'rest', app.restKey, limit, this.#waiting(app));
      if (!decision.granted) {
        app.restBlockedUntil = this.#blockedUntil(this.#now(), decision.retryAfterMs, limit);
        return false;
      }
    }
    if (limit && decision.remaining === 0) {
      app.restBlockedUntil = emptiedUntil(this.#now(), decision.settleAfterMs, limit);
    }
    const op = ops.find((o) => o.state === 'queued');
    if (!op) {
      this.#settle(app, 'rest', decision);
      return true;
    }
    this.#o.observer?.onFlush?.({ appId: app.appId, lane: 'single', size: 1, reason: 'single-lane' });
    this.#sendSingle(app, op, decision).catch((error: unknown) => this.#crashed(app, [op], error));
    return true;
  }

  async #acquire(
    app: AppState,
    bucket: 'batch' | 'rest',
    key: string,
    limit: BucketLimit,
    /** This replica's turn in a fleet; undefined: a grant out of turn (paying for batched ops). */
    waiting: Waiting | undefined,
  ): Promise<Decision> {
    let decision: Decision;
    try {
      // A grant out of turn pays for batched ops and is never settled: it must not fly (no lease).
      const leaseMs = waiting ? this.#o.leaseMs : 0;
      decision = await this.#o.limiter.acquire(key, limit, leaseMs, waiting);
    } catch {
      // The limiter backend failed outright (the fallback limiter should prevent this): wait a beat.
      decision = { granted: false, remaining: 0, retryAfterMs: intervalMsOf(limit) };
    }
    this.#o.observer?.onLimiter?.({
      appId: app.appId,
      bucket,
      granted: decision.granted,
      waitMs: decision.granted ? 0 : decision.retryAfterMs,
    });
    return decision;
  }

  /**
   * Reports the answer of a granted call to the limiter (SPEC §7: the next grant is spaced from the
   * answer), releases its lease and says how long this replica's oldest op has waited (its turn).
   * Alone with its limiter, the replica looks again one interval on, rather than at a retry time
   * that counted the lease; in a fleet the limiter's reopen notice says when.
   */
  #settle(app: AppState, bucket: 'batch' | 'rest', decision: Decision): void {
    const limit = bucket === 'batch' ? this.#o.batchLimit : this.#o.restLimit;
    if (!decision.granted || !limit) return;
    const key = bucket === 'batch' ? app.batchKey : app.restKey;
    // One round trip, off the callers' path.
    this.#o.limiter
      .settle(key, limit, decision.grant, this.#waiting(app))
      .catch(() => {
        // Best effort: a lost settle leaves a lease to expire on its own (leaseMs).
      })
      .finally(() => {
        if (!this.#shared) {
          const reopen = this.#now() + intervalMsOf(limit);
          setBlockedUntil(app, bucket, Math.min(blockedUntil(app, bucket), reopen));
        }
        this.#pump(app);
      });
  }

  /**
   * A denial's wait may include another call's lease, released as soon as that call is answered, so
   * a replica looks again after at most one interval (at least 20 ms) instead of the full wait.
   */
  #blockedUntil(now: number, retryAfterMs: number, limit: BucketLimit): number {
    return now + Math.min(retryAfterMs, Math.max(20, intervalMsOf(limit)));
  }

  /** This replica's turn for `app`'s buckets: how long its oldest queued op has waited, if any. */
  #waiting(app: AppState): Waiting {
    let oldest = Number.POSITIVE_INFINITY;
    for (const group of app.groups.values()) {
      const front = group.front();
      if (front && front.enqueuedAt < oldest) oldest = front.enqueuedAt;
    }
    return { waitedMs: Number.isFinite(oldest) ? this.#now() - oldest : undefined };
  }

  #arm(app: AppState, at: number): void {
    if (!Number.isFinite(at)) {
      if (app.timer) clearTimeout(app.timer);
      app.timer = undefined;
      app.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (app.timer && app.timerAt <= at) return;
    if (app.timer) clearTimeout(app.timer);
    app.timerAt = at;
    app.timer = setTimeout(
      () => {
        app.timer = undefined;
        app.timerAt = Number.POSITIVE_INFINITY;
        this.#pump(app);
      },
      Math.max(0, Math.ceil(at - this.#now())),
    );
  }

  // ---- upstream calls and answers -------------------------------------------------------------

  #leave(app: AppState, ops: readonly PendingOp[]): void {
    for (const op of ops) {
      op.state = 'inflight';
      op.attempts++;
      app.queued--;
      app.inflight++;
      app.flying.add(op);
      if (op.readKey !== undefined && app.reads.get(op.readKey) === op) app.reads.delete(op.readKey);
    }
  }

  async #sendBatch(app: AppState, credential: string, ops: PendingOp[], decision: Decision): Promise<void> {
    this.#leave(app, ops);
    if (this.#o.batchOpsSpendRest && this.#o.restLimit) {
      // The upstream counts batched ops against the single-call budget too: pay for them.
      for (let i = 0; i < ops.length; i++)
        void this.#acquire(app, 'rest', app.restKey, this.#o.restLimit, undefined);
    }
    const batch = this.#o.dialect.batchRequest(
      app.appId,
      ops.map((op) => op.op),
    );
    const traced = startUpstreamSpan(
      app.appId,
      'batch',
      'POST',
      ops.flatMap((op) => op.waiters.map((w) => w.spanContext)),
    );
    const request = { ...batch, headers: { ...batch.headers, ...traced.headers } };
    const sentAt = this.#now();
    let response: BufferedResponse;
    try {
      response = await this.#o.upstream.call(request, this.#o.authorize(app.appId, credential));
      endUpstreamSpan(traced.span, response.status);
    } catch (error) {
      endUpstreamSpan(traced.span, error instanceof Error ? error : new Error(String(error)));
      this.#settle(app, 'batch', decision);
      this.#o.observer?.onUpstream?.({
        appId: app.appId,
        lane: 'batch',
        status: 'error',
        ms: this.#now() - sentAt,
      });
      this.#failed(app, ops, error instanceof ProxyError ? error : upstreamError(error), sentAt);
      return;
    }
    const answeredAt = this.#now();
    this.#settle(app, 'batch', decision);
    this.#o.observer?.onUpstream?.({
      appId: app.appId,
      lane: 'batch',
      status: response.status,
      ms: answeredAt - sentAt,
    });
    const callId = this.#callIds++;
    const timing = (attempts: number): Timing => ({
      queueMs: 0,
      upstreamMs: answeredAt - sentAt,
      batchSize: ops.length,
      lane: 'batch',
      attempts,
      callId,
    });

    if (response.status === 429) {
      await this.#throttled(app, 'batch', ops, response);
      return;
    }
    if (response.status >= 500) {
      this.#failed(
        app,
        ops,
        new ProxyError(
          'PROXY_UPSTREAM_UNAVAILABLE',
          `the upstream answered the batch call with ${response.status}`,
        ),
        sentAt,
      );
      return;
    }
    if (response.status === 401 || response.status === 403) {
      // The whole group shares the credential, so each caller gets the upstream's own refusal.
      for (const op of ops) {
        this.#finish(
          app,
          op,
          {
            kind: 'result',
            status: response.status,
            body: jsonText(response.body),
            timing: timing(op.attempts),
          },
          sentAt,
        );
      }
      return;
    }
    if (response.status !== 200) {
      const error = new ProxyError(
        'PROXY_UPSTREAM_BAD_RESPONSE',
        `the upstream answered the batch call with ${response.status}`,
      );
      for (const op of ops)
        this.#finish(app, op, { kind: 'error', error, timing: timing(op.attempts) }, sentAt);
      return;
    }

    let decoded: unknown;
    try {
      decoded = JSON.parse(response.body);
    } catch {
      decoded = undefined;
    }
    const results = this.#o.dialect.decodeResults(decoded, ops.length);
    ops.forEach((op, i) => {
      const result = results[i];
      const body = result?.ok === true ? serialise(result.body) : undefined;
      const answer: Answer =
        result?.ok === true && body !== undefined
          ? {
              kind: 'result',
              status: result.status,
              body,
              timing: timing(op.attempts),
            }
          : {
              kind: 'error',
              error: new ProxyError(
                'PROXY_UPSTREAM_BAD_RESPONSE',
                result?.ok === true
                  ? 'the operation result cannot be re-serialised'
                  : (result?.reason ?? 'the batch response has no result for this operation'),
              ),
              timing: timing(op.attempts),
            };
      this.#finish(app, op, answer, sentAt);
    });
  }

  async #sendSingle(app: AppState, op: PendingOp, decision: Decision): Promise<void> {
    this.#leave(app, [op]);
    const single = this.#o.dialect.singleRequest(app.appId, op.op);
    const traced = startUpstreamSpan(
      app.appId,
      'single',
      op.op.method,
      op.waiters.map((w) => w.spanContext),
    );
    const request = { ...single, headers: { ...single.headers, ...traced.headers } };
    const sentAt = this.#now();
    let response: BufferedResponse;
    try {
      response = await this.#o.upstream.call(request, this.#o.authorize(app.appId, op.credential));
      endUpstreamSpan(traced.span, response.status);
    } catch (error) {
      endUpstreamSpan(traced.span, error instanceof Error ? error : new Error(String(error)));
      this.#settle(app, 'rest', decision);
      this.#o.observer?.onUpstream?.({
        appId: app.appId,
        lane: 'single',
        status: 'error',
        ms: this.#now() - sentAt,
      });
      this.#failed(app, [op], error instanceof ProxyError ? error : upstreamError(error), sentAt);
      return;
    }
    const answeredAt = this.#now();
    this.#settle(app, 'rest', decision);
    this.#o.observer?.onUpstream?.({
      appId: app.appId,
      lane: 'single',
      status: response.status,
      ms: answeredAt - sentAt,
    });
    if (response.status === 429) {
      await this.#throttled(app, 'rest', [op], response);
      return;
    }
    if (response.status >= 500) {
      this.#failed(
        app,
        [op],
        new ProxyError('PROXY_UPSTREAM_UNAVAILABLE', `the upstream answered with ${response.status}`),
        sentAt,
      );
      return;
    }
    const timing: Timing = {
      queueMs: 0,
      upstreamMs: answeredAt - sentAt,
      batchSize: 1,
      lane: 'single',
      attempts: op.attempts,
      callId: this.#callIds++,
    };
    this.#finish(
      app,
      op,
      { kind: 'result', status: response.status, body: jsonText(response.body), timing },
      sentAt,
    );
  }

  /** The upstream said 429: nothing ran. Pause the bucket for the fleet and put the ops back in front. */
  async #throttled(
    app: AppState,
    bucket: 'batch' | 'rest',
    ops: PendingOp[],
    response: BufferedResponse,
  ): Promise<void> {
    const pauseMs = retryAfterMs(response.headers['retry-after']) ?? DEFAULT_429_PAUSE_MS;
    const limit = bucket === 'batch' ? this.#o.batchLimit : this.#o.restLimit;
    const key = bucket === 'batch' ? app.batchKey : app.restKey;
    const until = this.#now() + pauseMs;
    if (bucket === 'batch') app.batchBlockedUntil = Math.max(app.batchBlockedUntil, until);
    else app.restBlockedUntil = Math.max(app.restBlockedUntil, until);
    // A 429 means nothing ran: it does not count against the op's retry budget.
    for (const op of ops) op.attempts--;
    this.#requeue(app, ops, 0, '429');
    if (limit) {
      try {
        await this.#o.limiter.pause(key, limit, pauseMs);
      } catch {
        // The local block above still holds this replica back.
      }
    }
  }

  /** A call failed without a usable answer: retry idempotent ops within budget, answer the rest. */
  #failed(app: AppState, ops: PendingOp[], error: ProxyError, sentAt: number): void {
    const now = this.#now();
    const retry: PendingOp[] = [];
    for (const op of ops) {
      if (IDEMPOTENT.has(op.op.method) && op.attempts < this.#o.maxAttempts && now < op.deadline)
        retry.push(op);
      else this.#finish(app, op, { kind: 'error', error }, sentAt);
    }
    if (retry.length > 0) {
      // Jittered exponential back-off, so a struggling upstream is not hit again at once.
      const attempt = retry[0]?.attempts ?? 1;
      const backoff = 50 * 2 ** (attempt - 1) * (0.5 + this.#random());
      this.#requeue(app, retry, now + backoff, 'retry');
    }
  }

  #requeue(app: AppState, ops: PendingOp[], notBefore: number, reason: '429' | 'retry'): void {
    for (const op of ops) {
      if (op.state !== 'inflight') continue; // answered meanwhile (abandoned at shutdown)
      op.state = 'queued';
      op.notBefore = notBefore;
      app.inflight--;
      app.flying.delete(op);
      app.queued++;
      let group = app.groups.get(op.credential);
      if (!group) {
        group = new GroupQueue(op.credential);
        app.groups.set(op.credential, group);
      }
      group.requeue(op);
      if (op.readKey !== undefined && !app.reads.has(op.readKey)) app.reads.set(op.readKey, op);
    }
    this.#o.observer?.onRequeue?.({ appId: app.appId, reason, count: ops.length });
    this.#pump(app);
  }

  #finish(app: AppState, op: PendingOp, answer: Answer, sentAt?: number): void {
    if (op.state === 'done') return;
    if (op.state === 'queued') app.queued--;
    else app.inflight--;
    app.flying.delete(op);
    op.state = 'done';
    app.index.delete(op);
    if (op.readKey !== undefined && app.reads.get(op.readKey) === op) app.reads.delete(op.readKey);
    const waiters = op.waiters;
    op.waiters = [];
    for (const waiter of waiters) {
      const answered = withQueueTime(answer, sentAt === undefined ? 0 : sentAt - waiter.arrivedAt);
      this.#o.observer?.onAnswer?.({
        appId: app.appId,
        lane: answered.timing?.lane,
        status: answered.kind === 'result' ? answered.status : answered.error.status,
        queueMs: answered.timing?.queueMs ?? this.#now() - waiter.arrivedAt,
      });
      waiter.resolve(answered);
    }
    // An answer can unblock conflicting ops; an emptied engine wakes whoever waits for idle.
    this.#pump(app);
    if (this.#idleWaiters.length > 0 && this.pending === 0) {
      const waiting = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiting) resolve();
    }
  }

  #watchAbort(app: AppState, op: PendingOp, waiter: Waiter, signal: AbortSignal | undefined): void {
    if (!signal) return;
    signal.addEventListener(
      'abort',
      () => {
        if (op.state !== 'queued') return; // already sent: its answer will simply find nobody
        const i = op.waiters.indexOf(waiter);
        if (i === -1) return;
        op.waiters.splice(i, 1);
        waiter.resolve({
          kind: 'error',
          error: new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away'),
        });
        if (op.waiters.length === 0)
          this.#finish(app, op, {
            kind: 'error',
            error: new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away'),
          });
      },
      { once: true },
    );
  }
}

/** JSON text of a decoded op result; undefined when it cannot be serialised (e.g. nested too deep). */
function serialise(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

function readKeyOf(credential: string, op: OpRequest): string {
  return `${credential}\n${op.path}\n${new URLSearchParams(op.query).toString()}\n${op.apiVersion ?? ''}`;
}

function withQueueTime(answer: Answer, queueMs: number): Answer {
  if (!answer.timing) return answer;
  return { ...answer, timing: { ...answer.timing, queueMs: Math.max(0, queueMs) } };
}

function deadlineError(retryMs: number): ProxyError {
  return new ProxyError(
    'PROXY_DEADLINE_EXCEEDED',
    'the call could not be sent upstream before its deadline',
    {
      retryAfterSec: Math.max(1, Math.ceil(retryMs / 1000)),
    },
  );
}

function upstreamError(error: unknown): ProxyError {
  return new ProxyError('PROXY_UPSTREAM_UNAVAILABLE', 'the upstream call failed', { cause: error });
}

/** The upstream's body as JSON text for the caller (`{}` for an empty body, SPEC §2). */
function jsonText(body: string): string {
  return body.length === 0 ? '{}' : body;
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.ceil(ms))));
}

function blockedUntil(app: AppState, bucket: 'batch' | 'rest'): number {
  return bucket === 'batch' ? app.batchBlockedUntil : app.restBlockedUntil;
}

function setBlockedUntil(app: AppState, bucket: 'batch' | 'rest', at: number): void {
  if (bucket === 'batch') app.batchBlockedUntil = at;
  else app.restBlockedUntil = at;
}

/**
 * A grant that emptied its bucket says when the next one is possible at the earliest (its lease may
 * keep the bucket closed longer, until the answer's settle): no need to ask before then.
 */
function emptiedUntil(now: number, settleAfterMs: number, limit: BucketLimit): number {
  const t = intervalMsOf(limit);
  return now + Math.max(0, settleAfterMs + t - (limit.burst - 1) * t);
}
