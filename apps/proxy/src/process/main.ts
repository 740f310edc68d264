#!/usr/bin/env node
// The proxy process: configuration, then the engine and the edge wired together, then the listeners.
// What can go wrong at start and how the process ends live in lifecycle.ts; the limiter in limiter.ts.

import type { RequestListener } from 'node:http';
import {
  bucketKey,
  type FallbackLimiter,
  Scheduler,
  type SchedulerOptions,
  UpstreamClient,
} from '@batch-proxy/core';
import type { Logger } from 'pino';
import { createAdminApp } from '../admin/admin-app.js';
import { createMetrics } from '../admin/metrics/metrics.js';
import { combineObservers } from '../admin/observers.js';
import { createStatus } from '../admin/status/status.js';
import type { AccessLog } from '../http/access-log.js';
import { createApp } from '../http/app.js';
import { type Auth, appTokenAuth, passthroughAuth } from '../http/auth.js';
import { CallTracker } from '../http/calls.js';
import { type AppSecrets, loadAppSecrets, SecretsFileError } from '../http/secrets.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { schedulerOptionsOf, statusLimitsOf, upstreamOptionsOf } from './engine-options.js';
import {
  drain,
  EXIT,
  exitAfterFlush,
  exitOnStartupMistake,
  installFaultHandlers,
  onStopSignals,
} from './lifecycle.js';
import { type ConfiguredLimiter, createLimiter } from './limiter.js';
import { createLogging } from './logging.js';
import { listen } from './server.js';
import { type Listening, startLine, upstreamWarning } from './startup.js';
import { tracingWanted } from './tracing-wanted.js';

function configure(): Config {
  try {
    // DIALECT picks the dialect; BATCH_MAX_OPS is checked against its maximum there.
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) exitOnStartupMistake(error);
    throw error;
  }
}

/** The credential rules of AUTH_MODE; in app-token mode the secrets file is read (and watched). */
function createAuth(config: Config, logger: Logger): { auth: Auth; secrets: AppSecrets | undefined } {
  if (config.AUTH_MODE !== 'app-token' || !config.APP_SECRETS_FILE)
    return { auth: passthroughAuth, secrets: undefined };
  try {
    const secrets = loadAppSecrets(config.APP_SECRETS_FILE, (error) => {
      if (error)
        logger.error({ err: error.message }, 'APP_SECRETS_FILE reload failed; keeping the previous keys');
      else logger.info('APP_SECRETS_FILE reloaded');
    });
    return { auth: appTokenAuth(secrets), secrets };
  } catch (error) {
    if (error instanceof SecretsFileError) throw ConfigError.of('APP_SECRETS_FILE', error.message);
    throw error;
  }
}

/** What the engine and the limiter show the admin listener, read when asked. */
interface Watched {
  readonly engine: () => Scheduler | undefined;
  readonly limiter: ConfiguredLimiter;
  readonly upstream: UpstreamClient;
}

/** The metrics and the status page, both reading the engine as it stands when scraped or sampled. */
function createWatchers(config: Config, { engine, limiter: { limiter, fallback, pace }, upstream }: Watched) {
  const metrics = createMetrics({
    queued: () => engine()?.snapshot() ?? [],
    redisFallback: () => fallback?.mode === 'fallback',
    pace: pace ? () => pace.stats() : undefined,
    paceMaxRate: config.pace?.maxRatePerSec,
  });
  const status = createStatus({
    snapshot: () => engine()?.snapshot() ?? [],
    groups: (appId) => engine()?.groups(appId) ?? { busiest: [], other: { groups: 0, queued: 0 } },
    peek: (appId, bucket, limit) => limiter.peek(bucketKey(upstream.origin, appId, bucket), limit),
    redisMode: () => fallback?.mode ?? 'none',
    pacing: pace && config.pace ? { board: pace, maxRatePerSec: config.pace.maxRatePerSec } : undefined,
    callers: () => metrics.callers(),
    limits: statusLimitsOf(config),
  });
  return { metrics, status };
}

/** Rare and actionable: an app's upstream keeps failing (open), is being probed, or recovered. */
function logCircuit(logger: Logger): NonNullable<SchedulerOptions['onCircuit']> {
  // `group` is a digest of the credential, never the credential: one line per group's change.
  return ({ appId, group, state }) =>
    logger[state === 'open' ? 'warn' : 'info']({ appId, group, circuit: state }, `circuit breaker ${state}`);
}

/** The data listener (PORT, HOST, its slowloris guards) and the admin listener (ADMIN_PORT, ADMIN_HOST). */
async function listenBoth(config: Config, app: RequestListener, admin: ReturnType<typeof createAdminApp>) {
  const data = await listen(app, {
    port: config.PORT,
    host: config.HOST,
    headersTimeoutMs: config.HEADERS_TIMEOUT_MS,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.KEEP_ALIVE_TIMEOUT_MS,
    variables: { port: 'PORT', host: 'HOST' },
  });
  const adminListener = await listen(admin, {
    port: config.ADMIN_PORT,
    host: config.ADMIN_HOST ?? config.HOST,
    variables: { port: 'ADMIN_PORT', host: config.ADMIN_HOST ? 'ADMIN_HOST' : 'HOST' },
  });
  return { data, admin: adminListener };
}

/** Why /readyz answers 503, if it does: draining, or Redis lost under REDIS_FAIL_CLOSED. */
function notReadyReason(config: Config, accepting: boolean, fallback: FallbackLimiter | undefined) {
  if (!accepting) return 'draining';
  if (config.REDIS_FAIL_CLOSED && fallback?.mode === 'fallback')
    return 'redis unreachable (REDIS_FAIL_CLOSED)';
  return undefined;
}

/** The start line (what a supervisor waits for), after the upstream's warning if it has one. */
function announce(config: Config, logger: Logger, upstream: UpstreamClient, at: Listening): void {
  const warning = upstreamWarning(config);
  if (warning) logger.warn({ upstream: upstream.origin }, warning);
  logger.info(startLine(config, at), 'batch proxy listening');
}

/** Starts everything; resolves with the drain to run on SIGTERM/SIGINT once it is listening. */
async function start(
  config: Config,
  logger: Logger,
  access: AccessLog,
): Promise<(signal: NodeJS.Signals) => Promise<void>> {
  // Standard OTEL_* variables turn traces on (OTLP over HTTP); otherwise the API stays a no-op, and
  // the SDK and its exporter are not even loaded.
  const tracing = tracingWanted(process.env) ? (await import('./tracing.js')).startTracing() : undefined;
  const { auth, secrets } = createAuth(config, logger);
  const configured = await createLimiter(config, logger);
  const { limiter, fallback } = configured;
  const upstream = new UpstreamClient(upstreamOptionsOf(config));
  let scheduler: Scheduler | undefined;
  const { metrics, status } = createWatchers(config, {
    engine: () => scheduler,
    limiter: configured,
    upstream,
  });
  scheduler = new Scheduler({
    // Every option the configuration sets (engine-options.test.ts holds each variable to it).
    ...schedulerOptionsOf(config),
    limiter,
    upstream,
    upstreamId: upstream.origin,
    authorize: auth.authorize,
    observer: combineObservers(metrics.observer, status.observer),
    onCircuit: logCircuit(logger),
  });
  const engine = scheduler;
  const calls = new CallTracker();

  let accepting = true;
  const app = createApp({
    dialect: config.dialect,
    scheduler: engine,
    upstream,
    logger,
    access,
    traced: tracing !== undefined,
    metrics,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    droppableHeaders: config.droppableHeaders,
    ...(config.priorityRules ? { priorityRules: config.priorityRules } : {}),
    auth: config.AUTH_MODE === 'app-token' ? 'verify' : 'forward',
    credentialOf: auth.credentialOf,
    accepting: () => accepting,
    calls,
  });
  const admin = createAdminApp({
    metrics,
    status,
    logger,
    notReadyReason: () => notReadyReason(config, accepting, fallback),
  });
  const listening = await listenBoth(config, app, admin);

  announce(config, logger, upstream, {
    port: listening.data.port,
    adminPort: listening.admin.port,
    // With its base path: an operator who set one sees it is used.
    upstream: upstream.url,
    limiterMode: fallback?.mode ?? 'memory',
  });

  return (signal) =>
    drain(signal, {
      logger,
      graceMs: config.SHUTDOWN_GRACE_MS,
      stopAccepting: () => {
        accepting = false;
      },
      engine,
      calls,
      data: listening.data.server,
      admin: listening.admin.server,
      release: [() => secrets?.close(), () => status.stop()],
      shutdown: [
        () => upstream.destroy(),
        () => limiter.close(),
        () => metrics.shutdown(),
        () => tracing?.shutdown(),
      ],
    });
}

const config = configure();
const { logger, access } = createLogging({
  level: config.LOG_LEVEL,
  accessLog: config.ACCESS_LOG,
  sampleEvery: config.ACCESS_LOG_SAMPLE_EVERY,
});
const fatal = installFaultHandlers(logger);
let running: ((signal: NodeJS.Signals) => Promise<void>) | undefined;
onStopSignals(async (signal) => {
  if (running) return running(signal);
  // Not listening yet, so nothing was accepted: there is nothing to drain.
  logger.info({ signal }, 'stopped during start-up');
  exitAfterFlush(logger, EXIT.ok);
});
// Logged only once the handlers are in place (before that, a signal ends the process by the OS
// default), so a supervisor that waits for this line can signal safely.
// The pid is in every line already (pino's base): naming it again wrote the key twice (issue #32).
logger.info('starting');
start(config, logger, access).then(
  (run) => {
    running = run;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) exitOnStartupMistake(error);
    fatal('start-up failed', error);
  },
);
