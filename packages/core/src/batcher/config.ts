// The engine's options as the edge gives them (SchedulerOptions, the public API), and as the engine
// uses them: every optional one resolved to its default, in one place.

import type { SpanContext } from '@opentelemetry/api';
import type { BatchDialect, OpRequest } from '../dialect/dialect.js';
import type { BucketLimit, Limiter } from '../ratelimit/limiter.js';
import type { RateHeadersMode } from '../ratelimit/rate-headers.js';
import type { CircuitState } from './breaker.js';
import { type BreakerOptions, DEFAULT_BREAKER } from './breaker.js';
import { type Clock, realClock } from './clock.js';
import type { UpstreamTransport } from './dispatch.js';
import type { Lane } from './op.js';
import type { FlushReason } from './planner.js';
import type { Priority } from './priority.js';

/** Hooks for metrics and traces; every one optional, all synchronous and cheap. */
export interface SchedulerObserver {
  onFlush?(e: { appId: string; lane: Lane; size: number; reason: FlushReason | 'single-lane' }): void;
  onUpstream?(e: { appId: string; lane: Lane; status: number | 'error'; ms: number }): void;
  onAnswer?(e: { appId: string; lane: Lane | undefined; status: number; queueMs: number }): void;
  onCollapsed?(e: { appId: string }): void;
  /** A call refused at the door (queue full, breaker open) or answered 503 for its deadline. */
  onShed?(e: {
    appId: string;
    code: 'PROXY_QUEUE_FULL' | 'PROXY_DEADLINE_EXCEEDED' | 'PROXY_CIRCUIT_OPEN';
  }): void;
  onLimiter?(e: { appId: string; bucket: 'batch' | 'rest'; granted: boolean; waitMs: number }): void;
  onRequeue?(e: { appId: string; reason: '429' | '424' | 'retry' | 'split'; count: number }): void;
  /**
   * An upstream answer's rate headers were read (RATE_HEADERS): the scope's bucket key, what the
   * upstream said remains (undefined: no count, e.g. Graph's hint alone), until its reset (ms), and
   * the rate the bucket now spends at.
   */
  onRateHeaders?(e: {
    appId: string;
    key: string;
    remaining: number | undefined;
    resetInMs: number | undefined;
    ratePerSec: number;
  }): void;
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
  /** The upstream counts batched ops against the single-call budget too (charged per batch). */
  readonly batchOpsSpendRest: boolean;
  /** A flush that would carry one op leaves as a single direct call instead. */
  readonly singleOpDirect: boolean;
  /**
   * How long a grant that empties a bucket may keep it closed waiting for its answer (see Grant in
   * limiter.ts): the upstream timeout plus a margin.
   */
  readonly leaseMs: number;
  /** Upstream calls an idempotent op may take after a 5xx, reset or timeout (1 = no retry). */
  readonly maxAttempts: number;
  /** The Authorization header value the upstream call carries for a group's credential. */
  readonly authorize: (appId: string, credential: string) => string | undefined;
  /** Reads the time (with real timers); `clock` replaces both. */
  readonly now?: () => number;
  /** Time and timers. Default: the real clock. */
  readonly clock?: Clock;
  readonly observer?: SchedulerObserver;
  readonly random?: () => number;
  /** The longest pause an upstream 429's Retry-After may impose on a bucket, in ms. Default 60 000. */
  readonly maxRetryAfterMs?: number;
  /** The most bytes of op payloads one batch call carries (at least one op always goes). Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Consecutive failed upstream calls (5xx, reset, timeout) that open an app's breaker; 0 = never. Default 5. */
  readonly breakerFailures?: number;
  /** How long an opened breaker answers at once 503 before a probe, in ms. Default 5 000. */
  readonly breakerOpenMs?: number;
  /** The longest it stays open after failed probes (each doubles it), in ms. Default 60 000. */
  readonly breakerMaxOpenMs?: number;
  /**
   * A group's circuit breaker changed state (breaker.ts, domains.ts); `group` is a digest of its
   * credential. The app's state is in `snapshot()`. Beside the observer, whose hooks the edge
   * implements in full.
   */
  readonly onCircuit?: (e: { appId: string; group: string; state: CircuitState }) => void;
  /**
   * Conflicting ops of one group may share a batch as a serial chain when the dialect can chain
   * (Graph dependsOn) and conflicts leave a parallel batch less than half full. Default true.
   */
  readonly dependsOnChains?: boolean;
  /**
   * Pace from the upstream's own rate-limit headers (issue #30): which style to read, and the share
   * of what remains held back. Undefined: not read (RATE_HEADERS=off).
   */
  readonly rateHeaders?: { readonly mode: RateHeadersMode; readonly margin: number } | undefined;
  /** How often apps with nothing to remember are forgotten, in ms. Default 10 000. */
  readonly idleSweepMs?: number;
}

/**
 * The part of an AbortSignal the engine uses for a queued op: an AbortSignal is one, and so is a
 * cheaper object the edge makes per call (it need not build an EventTarget for every request).
 */
export interface CallerSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
}

export interface Submission {
  readonly appId: string;
  readonly credential: string;
  readonly op: OpRequest;
  /** Aborted when the caller goes away; an op not yet sent is then dropped. */
  readonly signal?: CallerSignal;
  /** The caller's server span: the upstream call's span links to it. */
  readonly spanContext?: SpanContext;
  /**
   * The proxy verified the credential itself (AUTH_MODE=app-token): it is trusted at once. Otherwise
   * the credential's ops are ordered among themselves only until the upstream accepts it (SPEC §8d).
   */
  readonly verified?: boolean;
  /**
   * The caller's own longest wait (issue #31, `x-batch-max-wait-ms`): answered 503 + Retry-After
   * once it cannot leave within it. Bounded by `maxWaitMs`; absent = `maxWaitMs`.
   */
  readonly maxWaitMs?: number;
  /** The caller's priority when tokens are scarce (issue #31, priority.ts); absent = normal. */
  readonly priority?: Priority;
}

/** How long a caller may wait: its own bound, never past the operator's (MAX_WAIT_MS). */
export function callerWaitMs(maxWaitMs: number, callers: number | undefined): number {
  return callers === undefined ? maxWaitMs : Math.min(Math.max(0, callers), maxWaitMs);
}

export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

export interface SchedulerConfig extends SchedulerOptions {
  readonly clock: Clock;
  readonly random: () => number;
  readonly maxRetryAfterMs: number;
  readonly maxBatchBytes: number;
  readonly breaker: BreakerOptions;
  readonly idleSweepMs: number;
  /** Aborted by `abandon`: ends every upstream call still out. */
  readonly signal: AbortSignal;
}

export function resolve(options: SchedulerOptions, signal: AbortSignal): SchedulerConfig {
  if (options.maxOps < 1 || options.maxOps > options.dialect.maxOps) {
    throw new TypeError(`maxOps must be between 1 and ${options.dialect.maxOps} for ${options.dialect.name}`);
  }
  const now = options.now;
  const clock =
    options.clock ??
    (now ? { now, epochMs: realClock.epochMs, setTimeout: realClock.setTimeout } : realClock);
  return {
    ...options,
    clock,
    random: options.random ?? Math.random,
    maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS,
    maxBatchBytes: options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
    breaker: {
      failures: options.breakerFailures ?? DEFAULT_BREAKER.failures,
      openMs: options.breakerOpenMs ?? DEFAULT_BREAKER.openMs,
      maxOpenMs: options.breakerMaxOpenMs ?? DEFAULT_BREAKER.maxOpenMs,
    },
    idleSweepMs: options.idleSweepMs ?? 10_000,
    signal,
  };
}
