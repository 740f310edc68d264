// `@batch-proxy/core/testing`: the real parts tests run against — a throwaway redis-server, the
// manual clock the engine takes in place of real time — and the one Scheduler-options builder.

export { ManualClock } from '../batcher/clock.js';
export { type PendingOpFields, pendingOp } from './pending-op.js';
export { type RedisServer, type StartRedisServerOptions, startRedisServer } from './redis-server.js';
export { schedulerOptions, type TestSchedulerOptions } from './scheduler-options.js';
