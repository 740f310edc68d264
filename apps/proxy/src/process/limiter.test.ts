// The limiter from the configuration with PACING=adaptive: the batch bucket learns its rate, in
// process and fleet-wide through a real redis-server; the rest bucket keeps its fixed rate. And with
// REDIS_SENTINELS, the master it finds (real sentinel processes; sentinel.test.ts has the rest).

import { bucketKey } from '@batch-proxy/core';
import { type RedisServer, startRedisServer } from '@batch-proxy/core/testing';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { createLimiter } from './limiter.js';
import { startSentinel, stopSentinels } from './sentinel.fixture.js';

const logger = pino({ level: 'silent' });
const ADAPTIVE = { PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '100', PACE_DECREASE_FACTOR: '0.5' };
const LIMIT = { ratePerSec: 1, burst: 5 };

describe('createLimiter with PACING', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('keeps fixed rates by default', async () => {
    const { limiter, pace } = await createLimiter(loadConfig({}), logger);
    expect(pace).toBeUndefined();
    expect(await limiter.acquire(bucketKey('u', 'a', 'batch'), LIMIT)).not.toHaveProperty('ratePerSec');
    await limiter.close();
  });

  it('learns the batch bucket rate in process, and reports it', async () => {
    const { limiter, pace } = await createLimiter(loadConfig(ADAPTIVE), logger);
    const batch = bucketKey('u', 'a', 'batch');
    expect(await limiter.acquire(batch, LIMIT)).toMatchObject({ granted: true, ratePerSec: 50 });
    await limiter.pause(batch, LIMIT, 0);
    expect(await limiter.acquire(batch, LIMIT)).toMatchObject({ ratePerSec: 25 });
    expect(await limiter.acquire(bucketKey('u', 'a', 'rest'), LIMIT)).not.toHaveProperty('ratePerSec');
    expect(pace?.stats()).toMatchObject({ min: 25, max: 25, decreases: 1 });
    await limiter.close();
  });

  it('shares the learned rate between two replicas through Redis', async () => {
    const env = { ...ADAPTIVE, REDIS_URL: redis.url };
    const one = await createLimiter(loadConfig(env), logger);
    const two = await createLimiter(loadConfig(env), logger);
    const batch = bucketKey('u', 'shared', 'batch');
    try {
      expect(one.fallback?.mode).toBe('shared');
      await one.limiter.pause(batch, LIMIT, 0);
      expect(await two.limiter.acquire(batch, LIMIT)).toMatchObject({ ratePerSec: 25 });
      expect(one.pace?.stats().decreases).toBe(1);
      expect(two.pace?.stats()).toMatchObject({ median: 25, decreases: 0 });
    } finally {
      await one.limiter.close();
      await two.limiter.close();
    }
  });
});

describe('createLimiter with REDIS_SENTINELS', () => {
  it('shares its buckets on the master of the newest configuration, not where the first sentinel says', async () => {
    const [stale, fresh] = await Promise.all([startRedisServer(), startRedisServer()]);
    const name = 'limitermaster';
    try {
      // The first listed has not learnt a failover (epoch 0, the old master); the second has (epoch 2).
      const sentinels = await Promise.all([startSentinel(name, stale, 0), startSentinel(name, fresh, 2)]);
      const env = {
        REDIS_SENTINELS: sentinels.map((s) => `${s.host}:${s.port}`).join(','),
        REDIS_SENTINEL_NAME: name,
      };
      const { limiter, fallback } = await createLimiter(loadConfig(env), logger);
      try {
        expect(fallback?.mode).toBe('shared');
        await limiter.acquire(bucketKey('u', 'sentinel', 'batch'), LIMIT);
        const keys = async (server: RedisServer) => {
          const redis = new Redis(server.url);
          try {
            return await redis.keys('*sentinel*');
          } finally {
            redis.disconnect();
          }
        };
        expect(await keys(fresh)).not.toEqual([]);
        expect(await keys(stale)).toEqual([]);
      } finally {
        await limiter.close();
      }
    } finally {
      stopSentinels();
      await Promise.all([stale.stop(), fresh.stop()]);
    }
  });
});
