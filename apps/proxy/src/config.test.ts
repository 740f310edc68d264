import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the SPEC §9 defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      PORT: 8080,
      HOST: '0.0.0.0',
      ADMIN_PORT: 9464,
      UPSTREAM_URL: 'https://api.talkjs.com',
      BATCH_WINDOW_MS: 10,
      BATCH_MAX_OPS: 10,
      BATCH_RATE_PER_SEC: 1,
      BATCH_BURST: 500,
      BATCH_OPS_SPEND_REST: false,
      QUEUE_MAX_OPS: 10_000,
      MAX_WAIT_MS: 30_000,
      UPSTREAM_TIMEOUT_MS: 10_000,
      BODY_LIMIT_BYTES: 1_048_576,
      AUTH_MODE: 'passthrough',
      SHUTDOWN_GRACE_MS: 25_000,
      LOG_LEVEL: 'info',
    });
    expect(c.REDIS_URL).toBeUndefined();
    expect(c.restLimit).toBeUndefined();
  });

  it('reads the engine bounds: Retry-After cap, batch and answer sizes, circuit breaker', () => {
    expect(loadConfig({})).toMatchObject({
      RETRY_AFTER_MAX_MS: 60_000,
      BATCH_MAX_BYTES: 4 * 1_048_576,
      UPSTREAM_MAX_RESPONSE_BYTES: 32 * 1_048_576,
      CIRCUIT_BREAKER_FAILURES: 5,
      CIRCUIT_BREAKER_OPEN_MS: 5_000,
      CIRCUIT_BREAKER_MAX_OPEN_MS: 60_000,
    });
    expect(loadConfig({ CIRCUIT_BREAKER_FAILURES: '0' }).CIRCUIT_BREAKER_FAILURES).toBe(0);
    expect(() =>
      loadConfig({ CIRCUIT_BREAKER_OPEN_MS: '10000', CIRCUIT_BREAKER_MAX_OPEN_MS: '5000' }),
    ).toThrow(/CIRCUIT_BREAKER_MAX_OPEN_MS: must be at least CIRCUIT_BREAKER_OPEN_MS \(10000\)/);
    expect(() => loadConfig({ BATCH_MAX_BYTES: '0' })).toThrow(/BATCH_MAX_BYTES/);
  });

  it('keeps 0 as 0 and treats empty strings as unset', () => {
    const c = loadConfig({ BATCH_WINDOW_MS: '0', REDIS_URL: '' });
    expect(c.BATCH_WINDOW_MS).toBe(0);
    expect(c.REDIS_URL).toBeUndefined();
  });

  it('configures the rest bucket from REST_RATE_PER_SEC and REST_BURST', () => {
    expect(loadConfig({ REST_RATE_PER_SEC: '9', REST_BURST: '600' }).restLimit).toEqual({
      ratePerSec: 9,
      burst: 600,
    });
  });

  it('names every bad variable in one message', () => {
    expect(() => loadConfig({ PORT: 'eighty', BATCH_MAX_OPS: '0', UPSTREAM_URL: 'ftp://x' })).toThrowError(
      /PORT[\s\S]*BATCH_MAX_OPS|BATCH_MAX_OPS[\s\S]*PORT/,
    );
    expect(() => loadConfig({ UPSTREAM_URL: 'ftp://x' })).toThrowError(/UPSTREAM_URL/);
    expect(() => loadConfig({ AUTH_MODE: 'app-token' })).toThrowError(/APP_SECRETS_FILE/);
    expect(() => loadConfig({ REST_BURST: '5' })).toThrowError(/REST_RATE_PER_SEC/);
  });

  it('reads BATCH_DROPPABLE_HEADERS as lower-case names and refuses what is not a header name', () => {
    expect(loadConfig({}).droppableHeaders).toEqual(new Set());
    expect(loadConfig({ BATCH_DROPPABLE_HEADERS: 'X-Tenant, Cookie' }).droppableHeaders).toEqual(
      new Set(['x-tenant', 'cookie']),
    );
    expect(() => loadConfig({ BATCH_DROPPABLE_HEADERS: 'x-tenant, bad name' })).toThrow(
      /BATCH_DROPPABLE_HEADERS: expected header names/,
    );
  });

  it('says when UPSTREAM_URL was defaulted to the production API', () => {
    expect(loadConfig({}).upstreamDefaulted).toBe(true);
    expect(loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:1' }).upstreamDefaulted).toBe(false);
  });
});

describe('ACCESS_LOG', () => {
  it('samples successes by default (one in 100) and takes all, errors or sampled', () => {
    expect(loadConfig({})).toMatchObject({ ACCESS_LOG: 'sampled', ACCESS_LOG_SAMPLE_EVERY: 100 });
    for (const policy of ['all', 'errors', 'sampled'])
      expect(loadConfig({ ACCESS_LOG: policy }).ACCESS_LOG).toBe(policy);
    expect(loadConfig({ ACCESS_LOG_SAMPLE_EVERY: '10' }).ACCESS_LOG_SAMPLE_EVERY).toBe(10);
  });

  it('refuses an unknown policy or a sample rate below 1, naming the variable', () => {
    expect(() => loadConfig({ ACCESS_LOG: 'none' })).toThrowError(/ACCESS_LOG:/);
    expect(() => loadConfig({ ACCESS_LOG_SAMPLE_EVERY: '0' })).toThrowError(/ACCESS_LOG_SAMPLE_EVERY/);
  });
});
