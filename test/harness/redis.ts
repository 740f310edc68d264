// The suites' real redis-server: one helper for the whole repo, in `@batch-proxy/core/testing`;
// these names are the ones the suites were written against.

export {
  type RedisServer as RedisProcess,
  startRedisServer as startRedis,
} from '@batch-proxy/core/testing';
