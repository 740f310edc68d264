// The limiter from the configuration with PACING=adaptive: the batch bucket learns its rate, in
// process and fleet-wide through a real redis-server; the rest bucket keeps its fixed rate.

import { bucketKey } from '@batch-proxy/core';
import { type RedisServer, startRedisServer } from '@batch-proxy/core/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { createLimiter } from './limiter.js';

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
