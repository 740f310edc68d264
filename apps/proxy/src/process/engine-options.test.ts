// Every variable that configures the engine reaches it (SPEC §9, the README's configuration table):
// set to a value other than its default, it changes the Scheduler's or the upstream client's options.
// Issue #32: RETRY_AFTER_MAX_MS was parsed, then dropped by main.ts, and every test still passed.
//
// The table has a row for every variable config.ts knows: either what it becomes in the engine's
// options, or where else it acts and why that is not the engine's options. A new variable without a
// row fails here (and does not typecheck).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { talkjs } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import { type Config, loadConfig } from './config.js';
import {
  type ConfiguredSchedulerOptions,
  schedulerOptionsOf,
  statusLimitsOf,
  type UpstreamOptions,
  upstreamOptionsOf,
} from './engine-options.js';

/** The environment variables config.ts parses (Config's other keys are derived, in camelCase). */
type EnvVariable = Extract<keyof Config, Uppercase<string>>;

interface Options {
  readonly scheduler: ConfiguredSchedulerOptions;
  readonly upstream: UpstreamOptions;
}

interface EngineRow {
  /** Other variables the value needs (REST_BURST needs REST_RATE_PER_SEC), set on both sides. */
  readonly with?: Record<string, string>;
  /** A valid value other than the default. */
  readonly value: string;
  /** What the engine's options hold for it. */
  readonly read: (o: Options) => unknown;
  readonly expected: unknown;
}

/** Not an option of the Scheduler or the upstream client: where it acts instead. */
interface Elsewhere {
  readonly elsewhere: string;
}

const LISTENERS: Elsewhere = { elsewhere: 'the listeners main.ts opens (server.ts), not the engine' };
const SLOW_CLIENTS: Elsewhere = { elsewhere: "the data listener's slow-client guards (server.ts)" };
const LOGGING: Elsewhere = { elsewhere: 'logging.ts and access-log.ts: what is written, not what is sent' };
const REDIS: Elsewhere = {
  elsewhere:
    'the limiter backend createLimiter builds from the whole Config (limiter.ts; limiter.test.ts, test/e2e sentinel and cluster suites)',
};
const PACE: Elsewhere = {
  elsewhere:
    'config.pace, which createLimiter hands whole to PacedLimiter (config.test.ts "reads every PACE_* variable", limiter.test.ts)',
};
const AUTH: Elsewhere = {
  elsewhere:
    'the credential rules (auth.ts): checked at the edge; the engine only gets auth.authorize, a function (auth.test.ts, test/e2e/app-token)',
};

const TABLE: { readonly [V in EnvVariable]: EngineRow | Elsewhere } = {
  // ---- the engine's ----
  // Graph has no default budget: both sides name one.
  DIALECT: {
    with: { BATCH_RATE_PER_SEC: '1' },
    value: 'graph',
    read: (o) => o.scheduler.dialect.name,
    expected: 'graph',
  },
  // The dialect the engine gets is built with the write globs: a matching method is a write.
  JSONRPC_WRITE_METHODS: {
    with: { DIALECT: 'jsonrpc', BATCH_RATE_PER_SEC: '1' },
    value: 'eth_send*',
    read: (o) => {
      const built = o.scheduler.dialect.toOp({
        method: 'POST',
        target: { appId: '/rpc', path: '/rpc' },
        query: new URLSearchParams(),
        body: '{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x1"]}',
        apiVersion: undefined,
      });
      return 'op' in built ? built.op.write : built.reason;
    },
    expected: true,
  },
  // TalkJS written as a file: the scheduler gets the file's dialect, not the built-in module.
  DIALECT_FILE: {
    value: fileURLToPath(new URL('../../../../dialects/talkjs.json', import.meta.url)),
    read: (o) =>
      o.scheduler.dialect === talkjs ? 'the built-in module' : `${o.scheduler.dialect.name} file`,
    expected: 'talkjs file',
  },
  BATCH_WINDOW_MS: { value: '37', read: (o) => o.scheduler.windowMs, expected: 37 },
  BATCH_MAX_OPS: { value: '7', read: (o) => o.scheduler.maxOps, expected: 7 },
  BATCH_RATE_PER_SEC: {
    value: '3.5',
    read: (o) => o.scheduler.batchLimit,
    expected: { ratePerSec: 3.5, burst: 500 },
  },
  BATCH_BURST: { value: '9', read: (o) => o.scheduler.batchLimit, expected: { ratePerSec: 1, burst: 9 } },
  REST_RATE_PER_SEC: {
    value: '4',
    read: (o) => o.scheduler.restLimit,
    expected: { ratePerSec: 4, burst: 4 },
  },
  REST_BURST: {
    with: { REST_RATE_PER_SEC: '4' },
    value: '11',
    read: (o) => o.scheduler.restLimit,
    expected: { ratePerSec: 4, burst: 11 },
  },
  RATE_HEADERS: { value: 'graph', read: (o) => o.scheduler.rateHeaders?.mode, expected: 'graph' },
  RATE_HEADERS_MARGIN: { value: '0.25', read: (o) => o.scheduler.rateHeaders?.margin, expected: 0.25 },
  BATCH_OPS_SPEND_REST: { value: 'true', read: (o) => o.scheduler.batchOpsSpendRest, expected: true },
  SINGLE_OP_DIRECT: { value: 'true', read: (o) => o.scheduler.singleOpDirect, expected: true },
  QUEUE_MAX_OPS: { value: '123', read: (o) => o.scheduler.queueMaxOps, expected: 123 },
  MAX_WAIT_MS: { value: '4567', read: (o) => o.scheduler.maxWaitMs, expected: 4567 },
  UPSTREAM_URL: {
    value: 'http://upstream.test:8181/base',
    read: (o) => o.upstream.url,
    expected: 'http://upstream.test:8181/base',
  },
  UPSTREAM_TIMEOUT_MS: {
    value: '2345',
    // The client's deadline, and how long a grant that empties a bucket may hold it for the answer.
    read: (o) => [o.upstream.timeoutMs, o.scheduler.leaseMs],
    expected: [2345, 3345],
  },
  UPSTREAM_CONNECTIONS: { value: '5', read: (o) => o.upstream.connections, expected: 5 },
  UPSTREAM_MAX_ATTEMPTS: { value: '1', read: (o) => o.scheduler.maxAttempts, expected: 1 },
  UPSTREAM_MAX_RESPONSE_BYTES: { value: '2048', read: (o) => o.upstream.maxResponseBytes, expected: 2048 },
  BATCH_MAX_BYTES: { value: '4096', read: (o) => o.scheduler.maxBatchBytes, expected: 4096 },
  RETRY_AFTER_MAX_MS: { value: '1500', read: (o) => o.scheduler.maxRetryAfterMs, expected: 1500 },
  CIRCUIT_BREAKER_FAILURES: { value: '0', read: (o) => o.scheduler.breakerFailures, expected: 0 },
  CIRCUIT_BREAKER_OPEN_MS: { value: '250', read: (o) => o.scheduler.breakerOpenMs, expected: 250 },
  CIRCUIT_BREAKER_MAX_OPEN_MS: {
    value: '90000',
    read: (o) => o.scheduler.breakerMaxOpenMs,
    expected: 90_000,
  },

  // ---- not the engine's options ----
  PORT: LISTENERS,
  HOST: LISTENERS,
  ADMIN_PORT: LISTENERS,
  ADMIN_HOST: LISTENERS,
  HEADERS_TIMEOUT_MS: SLOW_CLIENTS,
  REQUEST_TIMEOUT_MS: SLOW_CLIENTS,
  KEEP_ALIVE_TIMEOUT_MS: SLOW_CLIENTS,
  BODY_LIMIT_BYTES: { elsewhere: "the edge's body reading, buffered and streamed (body.ts, app.ts)" },
  BATCH_DROPPABLE_HEADERS: { elsewhere: "the edge's batch-or-pass decision (http/route.ts)" },
  PRIORITY_RULES: {
    elsewhere: "the edge's hints (http/caller-hints.ts): a call's priority, which the engine takes per op",
  },
  AUTH_MODE: AUTH,
  APP_SECRETS_FILE: AUTH,
  SHUTDOWN_GRACE_MS: { elsewhere: 'the SIGTERM drain (lifecycle.ts), around the engine' },
  LOG_LEVEL: LOGGING,
  ACCESS_LOG: LOGGING,
  ACCESS_LOG_SAMPLE_EVERY: LOGGING,
  REDIS_URL: REDIS,
  REDIS_SENTINELS: REDIS,
  REDIS_SENTINEL_NAME: REDIS,
  REDIS_CLUSTER_NODES: REDIS,
  REDIS_FALLBACK_SHARE: REDIS,
  REDIS_FAIL_CLOSED: { elsewhere: "/readyz (main.ts notReadyReason): the limiter's mode, read, not set" },
  PACING: PACE,
  PACE_MAX_RATE_PER_SEC: PACE,
  PACE_MIN_RATE_PER_SEC: PACE,
  PACE_INITIAL_RATE_PER_SEC: PACE,
  PACE_DECREASE_FACTOR: PACE,
  PACE_INCREASE_STEP: PACE,
  PACE_PROBE_INTERVAL_MS: PACE,
};

const optionsOf = (env: Record<string, string>): Options => {
  const config = loadConfig(env);
  return { scheduler: schedulerOptionsOf(config), upstream: upstreamOptionsOf(config) };
};

const engineRows = Object.entries(TABLE).filter((entry): entry is [string, EngineRow] => 'read' in entry[1]);

describe('the engine options from the configuration', () => {
  it.each(engineRows)('%s reaches the engine', (variable, row) => {
    const base = row.with ?? {};
    const unset = row.read(optionsOf(base));
    const set = row.read(optionsOf({ ...base, [variable]: row.value }));
    expect(set).toEqual(row.expected);
    // The value is not the default: a variable that never got there would read the same.
    expect(set).not.toEqual(unset);
  });

  it('the table has a row for every variable config.ts parses, and only for those', () => {
    // The schema's fields, read from its source: one `NAME: z.…` line each.
    const source = readFileSync(new URL('./config.ts', import.meta.url), 'utf8');
    const parsed = [...source.matchAll(/^\s*([A-Z][A-Z0-9_]*): z\./gm)].map((m) => m[1]);
    expect(parsed.length).toBeGreaterThan(40);
    expect(Object.keys(TABLE).sort()).toEqual([...new Set(parsed)].sort());
  });

  it("the table covers every variable of the README's configuration table", () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('| variable | default | meaning |');
    expect(start).toBeGreaterThan(-1);
    const table = readme.slice(start, readme.indexOf('\n\n', start));
    const documented = new Set(
      table
        .split('\n')
        .flatMap((line) =>
          [...(line.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] ?? ''),
        ),
    );
    expect(documented.size).toBeGreaterThan(40);
    const rows = Object.keys(TABLE);
    for (const variable of documented) if (!variable.startsWith('OTEL_')) expect(rows).toContain(variable);
  });

  it('main.ts builds its engine from these options and overrides none of them', () => {
    const main = readFileSync(new URL('./main.ts', import.meta.url), 'utf8');
    expect(main).toMatch(/new UpstreamClient\(upstreamOptionsOf\(config\)\)/);
    const scheduler = /new Scheduler\(\{([\s\S]*?)\n {2}\}\);/.exec(main)?.[1] ?? '';
    expect(scheduler).toContain('...schedulerOptionsOf(config),');
    const after = scheduler.slice(scheduler.indexOf('...schedulerOptionsOf(config),'));
    for (const key of Object.keys(schedulerOptionsOf(loadConfig({}))))
      expect(after, key).not.toMatch(new RegExp(`^\\s*${key}\\b`, 'm'));
  });

  it("the status page shows the engine's own limits", () => {
    const config = loadConfig({
      BATCH_RATE_PER_SEC: '3',
      BATCH_BURST: '7',
      REST_RATE_PER_SEC: '5',
      BATCH_MAX_OPS: '8',
      BATCH_WINDOW_MS: '25',
    });
    expect(statusLimitsOf(config)).toEqual({
      batch: { ratePerSec: 3, burst: 7 },
      rest: { ratePerSec: 5, burst: expect.any(Number) },
      maxOps: 8,
      windowMs: 25,
    });
    expect(statusLimitsOf(loadConfig({})).rest).toBeUndefined();
  });
});
