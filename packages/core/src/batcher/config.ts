// The engine's options as the edge gives them (SchedulerOptions, the public API), and as the engine
// uses them: every optional one resolved to its default, in one place.

import type { SpanContext } from '@opentelemetry/api';
import type { BatchDialect, OpRequest } from '../dialect/dialect.js';
import type { BucketLimit, Limiter } from '../ratelimit/limiter.js';
import { type Clock, realClock } from './clock.js';
import type { UpstreamTransport } from './dispatch.js';
import type { Lane } from './op.js';
import type { FlushReason } from './planner.js';

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

export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

export interface SchedulerConfig extends SchedulerOptions {
  readonly clock: Clock;
  readonly random: () => number;
  readonly maxRetryAfterMs: number;
  /** Aborted by `abandon`: ends every upstream call still out. */
  readonly signal: AbortSignal;
}

export function resolve(options: SchedulerOptions, signal: AbortSignal): SchedulerConfig {
  if (options.maxOps < 1 || options.maxOps > options.dialect.maxOps) {
    throw new TypeError(`maxOps must be between 1 and ${options.dialect.maxOps} for ${options.dialect.name}`);
  }
  const now = options.now;
  const clock = options.clock ?? (now ? { now, setTimeout: realClock.setTimeout } : realClock);
  return {
    ...options,
    clock,
    random: options.random ?? Math.random,
    maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS,
    signal,
  };
}
