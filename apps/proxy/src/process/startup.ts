// The start line an operator can act on (SPEC §8c): what this replica is, what it talks to, how it
// limits, and where to look — one `batch proxy listening` line, plus a warning when UPSTREAM_URL was
// not set, so a mistyped variable name does not silently send traffic to the production API.

import { VERSION } from '../version.js';
import type { Config } from './config.js';

export interface Listening {
  readonly port: number;
  readonly adminPort: number;
  /** The upstream's origin, as the client will contact it. */
  readonly upstream: string;
  /** `memory`, or the Redis limiter's current mode. */
  readonly limiterMode: 'memory' | 'shared' | 'fallback';
}

/** The fields of the start line. */
export function startLine(config: Config, at: Listening): Record<string, unknown> {
  const adminHost = config.ADMIN_HOST ?? config.HOST;
  return {
    version: VERSION,
    port: at.port,
    adminPort: at.adminPort,
    statusPage: `http://${browsable(adminHost)}:${at.adminPort}/`,
    upstream: at.upstream,
    auth: config.AUTH_MODE,
    limiter: limiterKind(config),
    limiterMode: at.limiterMode,
    windowMs: config.BATCH_WINDOW_MS,
    maxOps: config.BATCH_MAX_OPS,
    limits: {
      batch: { ratePerSec: config.BATCH_RATE_PER_SEC, burst: config.BATCH_BURST },
      rest: config.restLimit ?? 'off',
      queueMaxOps: config.QUEUE_MAX_OPS,
      maxWaitMs: config.MAX_WAIT_MS,
    },
    ...(config.droppableHeaders.size > 0 ? { droppableHeaders: [...config.droppableHeaders] } : {}),
  };
}

/** The warning to log when UPSTREAM_URL was defaulted, else undefined. */
export function upstreamWarning(config: Config): string | undefined {
  if (!config.upstreamDefaulted) return undefined;
  return `UPSTREAM_URL is not set: calls go to the production API ${config.UPSTREAM_URL} (set UPSTREAM_URL to choose)`;
}

function limiterKind(config: Config): string {
  if (config.REDIS_CLUSTER_NODES) return 'redis-cluster';
  if (config.REDIS_SENTINELS) return 'redis-sentinel';
  if (config.REDIS_URL) return 'redis';
  return 'memory';
}

/** A wildcard bind address is reachable as localhost from the same machine. */
function browsable(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
