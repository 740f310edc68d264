#!/usr/bin/env node
// The proxy process: reads the configuration, wires engine and edge, serves, drains on SIGTERM.

import { once } from 'node:events';
import {
  bucketKey,
  FallbackLimiter,
  type Limiter,
  MemoryLimiter,
  ProxyError,
  RedisLimiter,
  Scheduler,
  talkjs,
  UpstreamClient,
} from '@batch-proxy/core';
import { pino } from 'pino';
import { createAdminApp } from './admin.js';
import { createApp } from './app.js';
import { type Auth, appTokenAuth, passthroughAuth } from './auth.js';
import { ConfigError, loadConfig } from './config.js';
import { createMetrics } from './metrics.js';
import { type AppSecrets, loadAppSecrets, SecretsFileError } from './secrets.js';
import { close, listen } from './server.js';
import { combineObservers, createStatus } from './status.js';
import { startTracing, tracingWanted } from './tracing.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({
    level: config.LOG_LEVEL,
    redact: {
      paths: ['authorization', 'headers.authorization', '*.authorization', 'secret', '*.secret'],
      censor: '[redacted]',
    },
  });

  // Standard OTEL_* variables turn traces on (OTLP over HTTP); otherwise the API stays a no-op.
  const tracing = tracingWanted(process.env) ? startTracing() : undefined;

  const dialect = talkjs;
  if (config.BATCH_MAX_OPS > dialect.maxOps) {
    console.error(
      `invalid configuration:\n  BATCH_MAX_OPS: at most ${dialect.maxOps} for the ${dialect.name} dialect (got "${config.BATCH_MAX_OPS}")`,
    );
    process.exit(2);
  }

  let secrets: AppSecrets | undefined;
  let auth: Auth = passthroughAuth;
  if (config.AUTH_MODE === 'app-token' && config.APP_SECRETS_FILE) {
    try {
      secrets = loadAppSecrets(config.APP_SECRETS_FILE, (error) => {
        if (error)
          logger.error({ err: error.message }, 'APP_SECRETS_FILE reload failed; keeping the previous keys');
        else logger.info('APP_SECRETS_FILE reloaded');
      });
    } catch (error) {
      if (error instanceof SecretsFileError) {
        console.error(`invalid configuration:\n  ${error.message}`);
        process.exit(2);
      }
      throw error;
    }
    auth = appTokenAuth(secrets);
  }

  let limiter: Limiter = new MemoryLimiter();
  let fallback: FallbackLimiter | undefined;
  if (config.REDIS_URL || config.REDIS_SENTINELS || config.REDIS_CLUSTER_NODES) {
    let lastError = '';
    const hostPorts = (list: string) =>
      list.split(',').map((entry) => {
        const [host = '', port = ''] = entry.trim().split(':');
        return { host, port: Number(port) };
      });
    const onError = (error: Error) => {
      // ioredis repeats the same error on every reconnect attempt: log each new one once.
      if (error.message !== lastError) logger.warn({ err: error.message }, 'redis error');
      lastError = error.message;
    };
    const redis = config.REDIS_CLUSTER_NODES
      ? RedisLimiter.connectCluster(hostPorts(config.REDIS_CLUSTER_NODES), { onError })
      : RedisLimiter.connect(config.REDIS_URL ?? 'redis://', {
          ...(config.REDIS_SENTINELS
            ? {
                redisOptions: {
                  sentinels: hostPorts(config.REDIS_SENTINELS),
                  name: config.REDIS_SENTINEL_NAME,
                },
              }
            : {}),
          onError,
        });
    fallback = new FallbackLimiter({
      primary: redis,
      share: config.REDIS_FALLBACK_SHARE,
      onModeChange: (mode, cause) => {
        if (mode === 'fallback') {
          logger.error(
            {
              err: cause instanceof Error ? cause.message : String(cause),
              share: config.REDIS_FALLBACK_SHARE,
            },
            'redis unreachable: rate limiting in process at a share of each limit',
          );
        } else {
          lastError = '';
          logger.warn('redis reachable again: rate limits shared by the fleet');
        }
      },
    });
    limiter = fallback;
    // Start shared when Redis is there; a Redis that is down at start is the fallback's job.
    await Promise.race([
      once(redis.client, 'ready'),
      new Promise((resolve) => setTimeout(resolve, 2_000).unref()),
    ]);
  }
  const upstream = new UpstreamClient({
    url: config.UPSTREAM_URL,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    connections: config.UPSTREAM_CONNECTIONS,
  });
  let scheduler: Scheduler | undefined;
  const metrics = createMetrics({
    queued: () => scheduler?.snapshot() ?? [],
    redisFallback: () => fallback?.mode === 'fallback',
  });
  const status = createStatus({
    snapshot: () => scheduler?.snapshot() ?? [],
    peek: (appId, bucket, limit) => limiter.peek(bucketKey(upstream.origin, appId, bucket), limit),
    redisMode: () => fallback?.mode ?? 'none',
    limits: {
      batch: { ratePerSec: config.BATCH_RATE_PER_SEC, burst: config.BATCH_BURST },
      rest: config.restLimit,
      maxOps: config.BATCH_MAX_OPS,
      windowMs: config.BATCH_WINDOW_MS,
    },
  });
  scheduler = new Scheduler({
    dialect,
    limiter,
    upstream,
    upstreamId: upstream.origin,
    windowMs: config.BATCH_WINDOW_MS,
    maxOps: config.BATCH_MAX_OPS,
    maxWaitMs: config.MAX_WAIT_MS,
    queueMaxOps: config.QUEUE_MAX_OPS,
    batchLimit: { ratePerSec: config.BATCH_RATE_PER_SEC, burst: config.BATCH_BURST },
    restLimit: config.restLimit,
    batchOpsSpendRest: config.BATCH_OPS_SPEND_REST,
    singleOpDirect: config.SINGLE_OP_DIRECT,
    maxAttempts: config.UPSTREAM_MAX_ATTEMPTS,
    leaseMs: config.UPSTREAM_TIMEOUT_MS + 1_000,
    authorize: auth.authorize,
    observer: combineObservers(metrics.observer, status.observer),
  });
  const engine = scheduler;

  let accepting = true;
  const app = createApp({
    dialect,
    scheduler: engine,
    upstream,
    logger,
    metrics,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    credentialOf: auth.credentialOf,
    accepting: () => accepting,
  });
  const admin = createAdminApp({
    metrics,
    status,
    notReadyReason: () => {
      if (!accepting) return 'draining';
      if (config.REDIS_FAIL_CLOSED && fallback?.mode === 'fallback')
        return 'redis unreachable (REDIS_FAIL_CLOSED)';
      return undefined;
    },
  });

  const data = await listen(app, {
    port: config.PORT,
    host: config.HOST,
    headersTimeoutMs: config.HEADERS_TIMEOUT_MS,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.KEEP_ALIVE_TIMEOUT_MS,
  });
  const adminListener = await listen(admin, {
    port: config.ADMIN_PORT,
    host: config.ADMIN_HOST ?? config.HOST,
  });
  logger.info(
    {
      port: data.port,
      adminPort: adminListener.port,
      upstream: upstream.origin,
      limiter: fallback ? 'redis' : 'memory',
    },
    'batch proxy listening',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    accepting = false;
    logger.info({ signal, pending: engine.pending }, 'draining');
    const grace = setTimeout(() => {
      engine.abandon(
        new ProxyError('PROXY_DRAINING', 'the proxy shut down before this call could be sent', {
          retryAfterSec: 1,
        }),
      );
    }, config.SHUTDOWN_GRACE_MS);
    await engine.drain();
    clearTimeout(grace);
    // Every accepted call is answered: give the last answers a moment to flush, then close every
    // connection (clients' idle keep-alive ones included) within what is left of the grace period.
    await close(data.server, Math.max(100, Math.min(1_000, config.SHUTDOWN_GRACE_MS / 10)));
    secrets?.close();
    status.stop();
    // Calls abandoned at the end of the grace period may still hang upstream: cut them.
    await Promise.race([
      Promise.allSettled([upstream.destroy(), limiter.close(), metrics.shutdown(), tracing?.shutdown()]),
      new Promise((resolve) => setTimeout(resolve, 250).unref()),
    ]);
    await close(adminListener.server, 100);
    logger.info('stopped');
    process.exit(0);
  };
  // A second signal while draining does not cut the drain short.
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

await main();
