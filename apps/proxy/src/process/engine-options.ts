// What the configuration (SPEC §9) makes of the engine: the Scheduler's options and the upstream
// client's (and the limits the status page shows of them), as pure functions of the parsed Config. main.ts adds the live parts (limiter, client,
// credential rules, observers); engine-options.test.ts holds every variable that configures the engine
// to reaching it (issue #32: RETRY_AFTER_MAX_MS was parsed, then dropped on the way, and no test saw).

import type { SchedulerOptions, UpstreamClient } from '@batch-proxy/core';
import type { StatusOptions } from '../admin/status/types.js';
import type { Config } from './config.js';

/** The Scheduler's options that come from the configuration, every one set. */
export type ConfiguredSchedulerOptions = Required<
  Pick<
    SchedulerOptions,
    | 'dialect'
    | 'windowMs'
    | 'maxOps'
    | 'maxWaitMs'
    | 'queueMaxOps'
    | 'batchLimit'
    | 'restLimit'
    | 'batchOpsSpendRest'
    | 'singleOpDirect'
    | 'maxAttempts'
    | 'leaseMs'
    | 'maxRetryAfterMs'
    | 'maxBatchBytes'
    | 'breakerFailures'
    | 'breakerOpenMs'
    | 'breakerMaxOpenMs'
    | 'rateHeaders'
  >
>;

export type UpstreamOptions = ConstructorParameters<typeof UpstreamClient>[0];

/** How long past the upstream timeout a grant that empties a bucket may keep it closed. */
const LEASE_MARGIN_MS = 1_000;

export function schedulerOptionsOf(config: Config): ConfiguredSchedulerOptions {
  return {
    dialect: config.dialect,
    windowMs: config.BATCH_WINDOW_MS,
    maxOps: config.BATCH_MAX_OPS,
    maxWaitMs: config.MAX_WAIT_MS,
    queueMaxOps: config.QUEUE_MAX_OPS,
    batchLimit: { ratePerSec: config.BATCH_RATE_PER_SEC, burst: config.BATCH_BURST },
    restLimit: config.restLimit,
    batchOpsSpendRest: config.BATCH_OPS_SPEND_REST,
    singleOpDirect: config.SINGLE_OP_DIRECT,
    maxAttempts: config.UPSTREAM_MAX_ATTEMPTS,
    leaseMs: config.UPSTREAM_TIMEOUT_MS + LEASE_MARGIN_MS,
    maxRetryAfterMs: config.RETRY_AFTER_MAX_MS,
    maxBatchBytes: config.BATCH_MAX_BYTES,
    breakerFailures: config.CIRCUIT_BREAKER_FAILURES,
    breakerOpenMs: config.CIRCUIT_BREAKER_OPEN_MS,
    breakerMaxOpenMs: config.CIRCUIT_BREAKER_MAX_OPEN_MS,
    rateHeaders: { mode: config.RATE_HEADERS, margin: config.RATE_HEADERS_MARGIN },
  };
}

/** The limits the status page shows beside each app's buckets: the engine's own (schedulerOptionsOf). */
export function statusLimitsOf(config: Config): StatusOptions['limits'] {
  const { batchLimit, restLimit, maxOps, windowMs } = schedulerOptionsOf(config);
  return { batch: batchLimit, rest: restLimit, maxOps, windowMs };
}

export function upstreamOptionsOf(config: Config): UpstreamOptions {
  return {
    url: config.UPSTREAM_URL,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    connections: config.UPSTREAM_CONNECTIONS,
    maxResponseBytes: config.UPSTREAM_MAX_RESPONSE_BYTES,
  };
}
