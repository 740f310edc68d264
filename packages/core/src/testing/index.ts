// `@batch-proxy/core/testing`: the real parts tests run against — a throwaway redis-server and the
// manual clock the engine takes in place of real time.

export { ManualClock } from '../batcher/clock.js';
export { type RedisServer, type StartRedisServerOptions, startRedisServer } from './redis-server.js';
