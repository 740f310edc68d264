// The rate limiter from the configuration (SPEC §7): in-process without Redis; with Redis (single
// node, Sentinel or Cluster) a FallbackLimiter that serves in-process at a share of each limit while
// Redis is unreachable — at start exactly as later (SPEC §8c). With PACING=adaptive, the batch
// bucket's rate is learned (docs/graph-dialect.md §3) in front of either, and a board of the learned
// rates feeds the metrics.

import { FallbackLimiter, type Limiter, MemoryLimiter, PaceBoard, PacedLimiter } from '@batch-proxy/core';
import type { Logger } from 'pino';
import type { Config } from './config.js';

export interface ConfiguredLimiter {
  readonly limiter: Limiter;
  /** Present when Redis is configured: its mode drives readiness, metrics and the status page. */
  readonly fallback: FallbackLimiter | undefined;
  /** Present with PACING=adaptive: the learned rates as this replica hears them. */
  readonly pace: PaceBoard | undefined;
}

/** The buckets whose rate PACING=adaptive learns (bucketKey's last part). */
const PACED_BUCKETS: ReadonlySet<string> = new Set(['batch']);

/** Wraps the limiter in the pacer when PACING=adaptive. */
function paced(config: Config, limiter: Limiter, fallback: FallbackLimiter | undefined): ConfiguredLimiter {
  if (config.pace === undefined) return { limiter, fallback, pace: undefined };
  const pace = new PaceBoard();
  const pacedLimiter = new PacedLimiter(limiter, { pace: config.pace, buckets: PACED_BUCKETS });
  pacedLimiter.onPace(pace.record);
  return { limiter: pacedLimiter, fallback, pace };
}

/** How long start-up waits for a first connection before it serves in fallback. */
const CONNECT_WAIT_MS = 2_000;
/** A bucket no app uses: touching it tells whether Redis answers, and changes nothing else. */
const PROBE = { key: 'batch-proxy:start-probe', limit: { ratePerSec: 1, burst: 1 } };

export async function createLimiter(config: Config, logger: Logger): Promise<ConfiguredLimiter> {
  if (!config.REDIS_URL && !config.REDIS_SENTINELS && !config.REDIS_CLUSTER_NODES) {
    return paced(config, new MemoryLimiter(), undefined);
  }
  let lastError = '';
  const onError = (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt: log each new one once.
    if (error.message !== lastError) logger.warn({ err: error.message }, 'redis error');
    lastError = error.message;
  };
  // Loaded here, not at the top: ioredis is a fifth of start-up and idle memory, and the default
  // embedded mode never uses it (test/redis-lazy.test.ts holds the proxy to that).
  const { RedisLimiter } = await import('@batch-proxy/core/redis');
  const redis = config.REDIS_CLUSTER_NODES
    ? RedisLimiter.connectCluster(hostPorts(config.REDIS_CLUSTER_NODES), { onError })
    : RedisLimiter.connect(config.REDIS_URL ?? 'redis://', {
        ...(config.REDIS_SENTINELS
          ? {
              redisOptions: {
                sentinels: hostPorts(config.REDIS_SENTINELS),
                name: config.REDIS_SENTINEL_NAME,
                // Finds the master by the sentinels' newest configuration epoch, not the first
                // answer, and leaves it on their +switch-master: a failover moves the proxy to the
                // new master at once, not when the demoted one is converted (~10 s later, measured)
                // — and never back to it through a sentinel that has not learnt the switch yet.
                Connector: (await import('./sentinel.js')).NewestMasterConnector,
              },
            }
          : {}),
        onError,
      });
  const fallback = new FallbackLimiter({
    primary: redis,
    share: config.REDIS_FALLBACK_SHARE,
    onModeChange: (mode, cause) => {
      if (mode === 'fallback') {
        logger.error(
          { err: cause instanceof Error ? cause.message : String(cause), share: config.REDIS_FALLBACK_SHARE },
          'redis unreachable: rate limiting in process at a share of each limit',
        );
      } else {
        lastError = '';
        logger.warn('redis reachable again: rate limits shared by the fleet');
      }
    },
  });
  await firstConnection(redis.client);
  // One bounded call decides the starting mode the way any later call would: an answer keeps it
  // shared, a failure or timeout switches to fallback (and starts the probe that switches back).
  await fallback.peek(PROBE.key, PROBE.limit).catch(() => undefined);
  return paced(config, fallback, fallback);
}

/**
 * Resolves on the client's first `ready` or first `error`, or after CONNECT_WAIT_MS — never rejects:
 * a Redis that is down at start is the fallback's job, not a reason to crash (`events.once` would
 * reject on the first `error`).
 */
function firstConnection(client: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      client.off('error', done);
      resolve();
    };
    const timer = setTimeout(done, CONNECT_WAIT_MS);
    timer.unref();
    client.once('ready', done);
    client.once('error', done);
  });
}

function hostPorts(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((entry) => {
    const [host = '', port = ''] = entry.trim().split(':');
    return { host, port: Number(port) };
  });
}
