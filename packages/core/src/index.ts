// The engine's public surface: everything apps/proxy wires together, except the Redis limiter.
// Library users: `@batch-proxy/core` (this file) is the engine — scheduler, dialects, upstream
// client, in-process limiters and the fallback wrapper — and loads no Redis client;
// `@batch-proxy/core/redis` adds RedisLimiter (it loads ioredis, so import it only when Redis is
// configured); `@batch-proxy/core/testing` holds the conformance suites and test helpers.

export { type Clock, realClock, type Timer } from './batcher/clock.js';
export type { GroupsView, GroupView } from './batcher/group-view.js';
export type { Answer, Lane, Timing } from './batcher/op.js';
export { PRIORITIES, type Priority } from './batcher/priority.js';
export {
  type CallerSignal,
  type FlushReason,
  Scheduler,
  type SchedulerObserver,
  type SchedulerOptions,
  type Submission,
  type UpstreamTransport,
} from './batcher/scheduler.js';
export {
  type AppTarget,
  type BatchContext,
  type BatchCost,
  type BatchDialect,
  type BatchPlan,
  batchableMethods,
  type HeaderRule,
  isBatchableMethod,
  type Method,
  methodSemantics,
  type OpRefusal,
  type OpRefusalReason,
  type OpRequest,
  type OpResult,
  type UpstreamRequest,
} from './dialect/dialect.js';
export {
  type DialectFile,
  type DialectFileInput,
  dialectFileSchema,
  fileDialect,
  parseDialectFile,
} from './dialect/file/index.js';
export { googleBatch } from './dialect/google-batch.js';
export { graph } from './dialect/graph.js';
export { isCommonlyDroppable, relayableHeaders } from './dialect/headers.js';
export {
  JSONRPC_MAX_OPS,
  type JsonRpcOptions,
  jsonrpc,
  jsonrpcDialect,
  parseMethodGlobs,
} from './dialect/jsonrpc.js';
export { talkjs } from './dialect/talkjs.js';
export { type ErrorCode, errorStatus, ProxyError } from './errors.js';
export { FallbackLimiter, type LimiterMode } from './ratelimit/fallback.js';
export { headerPace, marginProblem } from './ratelimit/header-pace.js';
export {
  type BucketLimit,
  bucketKey,
  type Decision,
  type Limiter,
  type PaceReport,
  type ScopeNotice,
} from './ratelimit/limiter.js';
export { MemoryLimiter } from './ratelimit/memory.js';
export { type PaceAdjustment, type PaceParams, paceProblem } from './ratelimit/pace.js';
export { PaceBoard, PacedLimiter, type PaceStats } from './ratelimit/paced.js';
export {
  RATE_HEADERS_MODES,
  type RateHeadersMode,
  type RateReading,
  readRateHeaders,
} from './ratelimit/rate-headers.js';
export {
  type BufferedResponse,
  type StreamedResponse,
  type StreamRequest,
  UpstreamClient,
  upstreamFailure,
} from './upstream/client.js';
