// The Redis-backed limiter, apart from the root entry: importing it loads ioredis (and its
// dependencies, about a fifth of the proxy's start-up), which the default embedded mode never uses.
// apps/proxy imports it dynamically, only when Redis is configured (apps/proxy/src/limiter.ts).

export {
  RedisLimiter,
  type RedisLimiterConnectOptions,
  type RedisLimiterOptions,
} from './ratelimit/redis.js';
