// The one configuration schema (SPEC §9): every variable, its default and its validation. Parsed once
// at start-up; a bad value stops the process with a message naming the variable.

import { type BatchDialect, type PaceParams, parseMethodGlobs, RATE_HEADERS_MODES } from '@batch-proxy/core';
import { en } from 'zod/locales';
import * as z from 'zod/mini';
import { ACCESS_LOG_POLICIES } from '../http/access-log.js';
import { type PriorityRules, parsePriorityRules } from '../http/priority-rules.js';
import { parseHeaderList } from '../http/route.js';
import { readDialectFile } from './dialect-file.js';
import { AUTH_MODES, DIALECT_NAMES, type DialectEntry, dialectEntry } from './dialects.js';

/** How long an idle client connection is kept open (KEEP_ALIVE_TIMEOUT_MS). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 620_000;

// zod's functional build (`zod/mini`) with its English messages: the same checks and the same
// messages as the chained API (`z.string().min(1)`), whose schemas each carry every method and whose
// module builds them all at load; in the bundle, this is −1.4 MiB of idle RSS (issue #17, measured).
z.config(en());

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().check(z.int(), z.minimum(min), z.maximum(max));
const positive = () => z.coerce.number().check(z.positive());
const bool = z.pipe(
  z.enum(['true', 'false', '1', '0', 'yes', 'no']),
  z.transform((v) => v === 'true' || v === '1' || v === 'yes'),
);
const text = () => z.string().check(z.minLength(1));
const HOST_PORTS = /^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/;

/**
 * UPSTREAM_URL: an http(s) origin, optionally with a base path that prefixes every upstream path
 * (an API behind a gateway's prefix). What the client would otherwise drop without a word — a query,
 * a fragment, credentials — is refused, and each mistake named (`new URL`'s "Invalid URL" named none).
 */
function upstreamUrlIssues(value: string, ctx: z.core.$RefinementCtx<string>): void {
  const problem = (message: string) => ctx.addIssue({ code: 'custom', message, input: value });
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problem('expected an absolute http or https URL, e.g. https://api.talkjs.com');
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problem(`the scheme must be http or https, not ${url.protocol.slice(0, -1)}`);
  } else if (url.username !== '' || url.password !== '') {
    problem('must not carry credentials: the upstream gets each caller’s own Authorization');
  } else if (url.search !== '' || url.hash !== '') {
    problem('must not have a query or a fragment: only a base path may follow the host');
  }
}

// ---- Adaptive pacing (issue #19, docs/graph-dialect.md §3): PACING and PACE_* ----------------------
// The batch bucket's rate learned by AIMD (decrease on 429, probe upward on demand) within the
// operator's bounds, shared by the fleet through Redis. `fixed` (default) keeps BATCH_RATE_PER_SEC.

const paceFields = {
  PACING: z._default(z.enum(['fixed', 'adaptive']), 'fixed'),
  /** The operator's maximum, batch calls/s (required with PACING=adaptive): the batch bucket is paced. */
  PACE_MAX_RATE_PER_SEC: z.optional(positive()),
  PACE_MIN_RATE_PER_SEC: z._default(positive(), 1),
  /** Default: half the maximum. */
  PACE_INITIAL_RATE_PER_SEC: z.optional(positive()),
  PACE_DECREASE_FACTOR: z._default(z.coerce.number().check(z.gt(0), z.lt(1)), 0.9),
  /** Batch calls/s added per probe interval; default 2% of the maximum, at least 1. */
  PACE_INCREASE_STEP: z.optional(positive()),
  PACE_PROBE_INTERVAL_MS: z._default(int(1), 1000),
};

interface PaceFields {
  PACING: 'fixed' | 'adaptive';
  PACE_MAX_RATE_PER_SEC?: number | undefined;
  PACE_MIN_RATE_PER_SEC: number;
  PACE_INITIAL_RATE_PER_SEC?: number | undefined;
  PACE_DECREASE_FACTOR: number;
  PACE_INCREASE_STEP?: number | undefined;
  PACE_PROBE_INTERVAL_MS: number;
}

/** The pacer's parameters with their defaults filled in; undefined with PACING=fixed. */
function paceParams(c: PaceFields): PaceParams | undefined {
  if (c.PACING !== 'adaptive' || c.PACE_MAX_RATE_PER_SEC === undefined) return undefined;
  const max = c.PACE_MAX_RATE_PER_SEC;
  return {
    maxRatePerSec: max,
    minRatePerSec: c.PACE_MIN_RATE_PER_SEC,
    initialRatePerSec: c.PACE_INITIAL_RATE_PER_SEC ?? Math.max(c.PACE_MIN_RATE_PER_SEC, max / 2),
    decreaseFactor: c.PACE_DECREASE_FACTOR,
    increaseStep: c.PACE_INCREASE_STEP ?? Math.max(1, 0.02 * max),
    probeIntervalMs: c.PACE_PROBE_INTERVAL_MS,
  };
}

function paceIssues(c: PaceFields, ctx: z.core.$RefinementCtx<unknown>): void {
  if (c.PACING !== 'adaptive') return;
  if (c.PACE_MAX_RATE_PER_SEC === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['PACE_MAX_RATE_PER_SEC'],
      message: 'PACING=adaptive needs PACE_MAX_RATE_PER_SEC (the operator bound, batch calls/s)',
    });
    return;
  }
  if (c.PACE_MIN_RATE_PER_SEC > c.PACE_MAX_RATE_PER_SEC) {
    ctx.addIssue({
      code: 'custom',
      path: ['PACE_MIN_RATE_PER_SEC'],
      message: `must be at most PACE_MAX_RATE_PER_SEC (${c.PACE_MAX_RATE_PER_SEC})`,
    });
    return;
  }
  const initial = c.PACE_INITIAL_RATE_PER_SEC;
  if (initial !== undefined && (initial < c.PACE_MIN_RATE_PER_SEC || initial > c.PACE_MAX_RATE_PER_SEC)) {
    ctx.addIssue({
      code: 'custom',
      path: ['PACE_INITIAL_RATE_PER_SEC'],
      message: `must be within [PACE_MIN_RATE_PER_SEC, PACE_MAX_RATE_PER_SEC] (${c.PACE_MIN_RATE_PER_SEC}, ${c.PACE_MAX_RATE_PER_SEC})`,
    });
  }
}
// ---- end of adaptive pacing -------------------------------------------------------------------------

/** DIALECT_FILE's registry entry, with the file it came from, or an issue naming the file's field. */
function dialectFileEntry(
  path: string,
  ctx: z.core.ParsePayload<unknown>,
): DialectEntry & { readonly source: string } {
  const entry = readDialectFile(path);
  if ('error' in entry) {
    ctx.issues.push({ code: 'custom', message: entry.error, input: path });
    return z.NEVER;
  }
  return { ...entry, source: path };
}

const schema = z
  .object({
    PORT: z._default(int(0, 65535), 8080),
    HOST: z._default(text(), '0.0.0.0'),
    ADMIN_PORT: z._default(int(0, 65535), 9464),
    ADMIN_HOST: z.optional(text()),
    /** Default per DIALECT (see the dialect block below). */
    UPSTREAM_URL: z.optional(z.string().check(z.superRefine(upstreamUrlIssues))),
    REDIS_URL: z.optional(text()),
    /** Redis Sentinel: comma-separated host:port list; REDIS_URL then only carries password and db. */
    REDIS_SENTINELS: z.optional(z.string().check(z.regex(HOST_PORTS, 'expected host:port[,host:port...]'))),
    REDIS_SENTINEL_NAME: z._default(text(), 'mymaster'),
    /** Redis Cluster: comma-separated host:port seed nodes (REDIS_URL is then not used). */
    REDIS_CLUSTER_NODES: z.optional(
      z.string().check(z.regex(HOST_PORTS, 'expected host:port[,host:port...]')),
    ),
    REDIS_FALLBACK_SHARE: z._default(z.coerce.number().check(z.positive(), z.maximum(1)), 0.5),
    REDIS_FAIL_CLOSED: z._default(bool, false),
    BATCH_WINDOW_MS: z._default(int(0, 60_000), 10),
    /** Default per DIALECT: the dialect's maximum (10 TalkJS, 20 Graph, 100 Google batch). */
    BATCH_MAX_OPS: z.optional(int(1)),
    /** Default per DIALECT (process/dialects.ts): TalkJS 1 / 500; Graph and Google batch none (required). */
    BATCH_RATE_PER_SEC: z.optional(positive()),
    BATCH_BURST: z.optional(int(1)),
    REST_RATE_PER_SEC: z.optional(positive()),
    REST_BURST: z.optional(int(1)),
    BATCH_OPS_SPEND_REST: z._default(bool, false),
    SINGLE_OP_DIRECT: z._default(bool, false),
    QUEUE_MAX_OPS: z._default(int(1), 10_000),
    MAX_WAIT_MS: z._default(int(1), 30_000),
    UPSTREAM_TIMEOUT_MS: z._default(int(1), 10_000),
    UPSTREAM_CONNECTIONS: z._default(int(1, 10_000), 64),
    UPSTREAM_MAX_ATTEMPTS: z._default(int(1, 10), 3),
    BODY_LIMIT_BYTES: z._default(int(1), 1_048_576),
    /** The longest answer body read from the upstream (buffered calls); larger ones answer 502. */
    UPSTREAM_MAX_RESPONSE_BYTES: z._default(int(1), 32 * 1_048_576),
    /** The most bytes of op payloads one batch call carries (one op always goes). */
    /** Default per dialect: a dialect file's maxBytes, else 4 MiB. */
    BATCH_MAX_BYTES: z.optional(int(1)),
    /** The longest pause an upstream 429's Retry-After may impose on a bucket. */
    RETRY_AFTER_MAX_MS: z._default(int(0), 60_000),
    /** Consecutive failed upstream calls (5xx, reset, timeout) that open an app's breaker; 0 = off. */
    CIRCUIT_BREAKER_FAILURES: z._default(int(0), 5),
    /** How long an open breaker answers 503 at once before one probe call. */
    CIRCUIT_BREAKER_OPEN_MS: z._default(int(1), 5_000),
    /** The longest it stays open after failed probes (each doubles the open time). */
    CIRCUIT_BREAKER_MAX_OPEN_MS: z._default(int(1), 60_000),
    HEADERS_TIMEOUT_MS: z._default(int(100), 10_000),
    REQUEST_TIMEOUT_MS: z._default(int(100), 30_000),
    // Above the idle timeouts of what usually sits in front (AWS ALB and nginx 60 s, Google Cloud's
    // load balancers 600 s): the caller's side must close an idle connection first, or a call sent on
    // it just as the proxy closes it meets a reset (docs/deploy.md).
    KEEP_ALIVE_TIMEOUT_MS: z._default(int(100), DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    AUTH_MODE: z._default(z.enum(AUTH_MODES), 'passthrough'),
    APP_SECRETS_FILE: z.optional(text()),
    SHUTDOWN_GRACE_MS: z._default(int(0), 25_000),
    /**
     * Header names (comma-separated) that may be dropped inside a batch, added to the built-in
     * allow-list: a header the upstream ignores (`X-Tenant`, a `Cookie`) then no longer turns
     * batching off.
     */
    BATCH_DROPPABLE_HEADERS: z.optional(
      z
        .string()
        .check(
          z.refine((v) => !('invalid' in parseHeaderList(v)), 'expected header names separated by commas'),
        ),
    ),
    /**
     * Priorities by method and path for calls that send no `x-batch-priority` (issue #31):
     * `<high|normal|low> <METHOD|*> <path>` entries separated by `;`, `*` one segment, a final `**`
     * any rest; the first match wins (http/priority-rules.ts).
     */
    PRIORITY_RULES: z.optional(
      z
        .string()
        .check(
          z.refine(
            (v) => !('invalid' in parsePriorityRules(v)),
            'expected entries "<high|normal|low> <METHOD|*> </path/with/*/or/**>" separated by ;',
          ),
        ),
    ),
    LOG_LEVEL: z._default(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
    ...paceFields,
    // ── Rate headers (issue #30): pace from the upstream's own RateLimit / X-RateLimit /
    // Sforce-Limit-Info / x-ms-throttle-limit-percentage figures; BATCH_RATE_PER_SEC stays the ceiling.
    RATE_HEADERS: z._default(z.enum(RATE_HEADERS_MODES), 'auto'),
    /** Share of what the upstream says remains that is held back (calls in flight, other replicas). */
    RATE_HEADERS_MARGIN: z._default(z.coerce.number().check(z.gte(0), z.lt(1)), 0.1),

    // ---- Dialect (issue #19, Microsoft Graph): DIALECT and what follows from it. ----
    /** The upstream's batch API: TalkJS `POST /v1/{appId}/batch` or Microsoft Graph `$batch`. */
    DIALECT: z._default(z.enum(DIALECT_NAMES), 'talkjs'),
    /**
     * DIALECT=jsonrpc: the methods that change state, as globs separated by commas (`eth_send*,
     * personal_*`; `*` for all). Any other method is a read, collapsed and resent after a 5xx.
     */
    JSONRPC_WRITE_METHODS: z.optional(
      z
        .string()
        .check(z.regex(/^[^\s,]+(\s*,\s*[^\s,]+)*\s*,?$/, 'expected method globs separated by commas')),
    ),
    /**
     * A dialect described as data (docs/dialect-file.md), read and checked here at start; it takes
     * DIALECT's place. Parsed into its registry entry, or one issue naming the file's field.
     */
    DIALECT_FILE: z.optional(z.pipe(text(), z.transform(dialectFileEntry))),
    // ---- end of the dialect block ----

    // ── Access log (issue #17) ───────────────────────────────────────────────────────────────────
    // One line per answered call at LOG_LEVEL=info. Errors (status >= 400, or a proxy error code) and
    // sheds are logged under every policy; successes: `all` each, `errors` none, `sampled` one in
    // ACCESS_LOG_SAMPLE_EVERY. Default and its cost per call: docs/benchmarks.md ("Access log").
    ACCESS_LOG: z._default(z.enum(ACCESS_LOG_POLICIES), 'sampled'),
    /** `sampled`: one successful call in this many is logged (a counter, not a random draw). */
    ACCESS_LOG_SAMPLE_EVERY: z._default(int(1, 1_000_000), 100),
    // ─────────────────────────────────────────────────────────────────────────────────────────────
  })
  .check(
    z.superRefine((c, ctx) => {
      paceIssues(c, ctx);
      // ---- Dialect (issue #19) ----
      const entry = c.DIALECT_FILE ?? dialectEntry(c.DIALECT);
      const dialect = entry.dialect;
      const named = c.DIALECT_FILE ? `DIALECT_FILE=${c.DIALECT_FILE.source}` : `DIALECT=${c.DIALECT}`;
      if (c.BATCH_MAX_OPS !== undefined && c.BATCH_MAX_OPS > dialect.maxOps) {
        ctx.addIssue({
          code: 'custom',
          path: ['BATCH_MAX_OPS'],
          message: `at most ${dialect.maxOps} for the ${dialect.name} dialect (got "${c.BATCH_MAX_OPS}")`,
        });
      }
      if (!entry.authModes.includes(c.AUTH_MODE)) {
        ctx.addIssue({
          code: 'custom',
          path: ['AUTH_MODE'],
          message: `${named} allows ${entry.authModes.join(' or ')}, not ${c.AUTH_MODE}`,
        });
      }
      if (entry.batchBudget === 'required' && c.BATCH_RATE_PER_SEC === undefined && c.PACING !== 'adaptive') {
        ctx.addIssue({
          code: 'custom',
          path: ['BATCH_RATE_PER_SEC'],
          message: `required with ${named}: ${entry.budgetWhy ?? 'it has no default budget'}`,
        });
      }
      // ---- end of the dialect block ----
      if (c.REST_BURST !== undefined && c.REST_RATE_PER_SEC === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['REST_RATE_PER_SEC'],
          message: 'REST_BURST is set, so REST_RATE_PER_SEC must be too',
        });
      }
      // Node refuses a server whose whole-request bound is shorter than its head bound (a RangeError).
      if (c.REQUEST_TIMEOUT_MS < c.HEADERS_TIMEOUT_MS) {
        ctx.addIssue({
          code: 'custom',
          path: ['REQUEST_TIMEOUT_MS'],
          message: `must be at least HEADERS_TIMEOUT_MS (${c.HEADERS_TIMEOUT_MS})`,
        });
      }
      if (c.CIRCUIT_BREAKER_MAX_OPEN_MS < c.CIRCUIT_BREAKER_OPEN_MS) {
        ctx.addIssue({
          code: 'custom',
          path: ['CIRCUIT_BREAKER_MAX_OPEN_MS'],
          message: `must be at least CIRCUIT_BREAKER_OPEN_MS (${c.CIRCUIT_BREAKER_OPEN_MS})`,
        });
      }
      if (c.PORT !== 0 && c.PORT === c.ADMIN_PORT && (c.ADMIN_HOST ?? c.HOST) === c.HOST) {
        ctx.addIssue({ code: 'custom', path: ['ADMIN_PORT'], message: 'must differ from PORT' });
      }
      if (c.REDIS_SENTINELS !== undefined && c.REDIS_CLUSTER_NODES !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['REDIS_CLUSTER_NODES'],
          message: 'set either REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both',
        });
      }
      if (c.AUTH_MODE === 'app-token' && c.APP_SECRETS_FILE === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['APP_SECRETS_FILE'],
          message: 'AUTH_MODE=app-token needs APP_SECRETS_FILE',
        });
      }
    }),
  );

export type Config = Omit<
  z.infer<typeof schema>,
  'UPSTREAM_URL' | 'BATCH_MAX_OPS' | 'BATCH_RATE_PER_SEC' | 'BATCH_BURST' | 'BATCH_MAX_BYTES'
> & {
  /** BATCH_MAX_BYTES, or the dialect file's maxBytes, or 4 MiB. */
  readonly BATCH_MAX_BYTES: number;
  /** UPSTREAM_URL, or the dialect's production API when unset. */
  readonly UPSTREAM_URL: string;
  /**
   * BATCH_RATE_PER_SEC, or the dialect's default; with PACING=adaptive and none, the pacer's initial
   * rate (the learned rate replaces it).
   */
  readonly BATCH_RATE_PER_SEC: number;
  /** BATCH_BURST, or the dialect's default (one second of the rate where it has none). */
  readonly BATCH_BURST: number;
  /** BATCH_MAX_OPS, or the dialect's maximum when unset. */
  readonly BATCH_MAX_OPS: number;
  /** The batch dialect DIALECT names, or DIALECT_FILE describes. */
  readonly dialect: BatchDialect;
  /** The rest bucket, when configured (REST_BURST defaults to 1 second of REST_RATE_PER_SEC). */
  readonly restLimit: { ratePerSec: number; burst: number } | undefined;
  /** PRIORITY_RULES, parsed; undefined when unset. */
  readonly priorityRules: PriorityRules | undefined;
  /** BATCH_DROPPABLE_HEADERS as lower-case names (empty when unset). */
  readonly droppableHeaders: ReadonlySet<string>;
  /** Whether UPSTREAM_URL was left unset, so the production API is the target. */
  readonly upstreamDefaulted: boolean;
  /** PACING=adaptive: the batch bucket's pacer, defaults filled in (undefined: fixed rate). */
  readonly pace: PaceParams | undefined;
};

/**
 * A start-up mistake: the variable to fix and what is wrong with it. Printed as one line per
 * problem, `invalid configuration: NAME: what`, and the process exits 2 (SPEC §8c).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: ReadonlyArray<{ readonly variable: string; readonly message: string }>) {
    super(problems.map((p) => `invalid configuration: ${p.variable}: ${p.message}`).join('\n'));
  }

  static of(variable: string, message: string): ConfigError {
    return new ConfigError([{ variable, message }]);
  }
}

/** Parses the environment; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset, as in most container platforms' env handling.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  if (present.DIALECT_FILE !== undefined && present.DIALECT !== undefined)
    throw ConfigError.of('DIALECT_FILE', 'set DIALECT or DIALECT_FILE, not both');
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? 'configuration');
      const value = present[variable];
      const shown =
        // A dialect file's mistake already names the file.
        value === undefined || /SECRET|PASSWORD|TOKEN|REDIS_URL|DIALECT_FILE/.test(variable)
          ? ''
          : ` (got "${oneLine(value)}")`;
      return { variable, message: `${issue.message}${shown}` };
    });
    throw new ConfigError(problems);
  }
  const c = parsed.data;
  const restLimit =
    c.REST_RATE_PER_SEC === undefined
      ? undefined
      : {
          ratePerSec: c.REST_RATE_PER_SEC,
          burst: c.REST_BURST ?? Math.max(1, Math.ceil(c.REST_RATE_PER_SEC)),
        };
  const headers =
    c.BATCH_DROPPABLE_HEADERS === undefined ? new Set<string>() : parseHeaderList(c.BATCH_DROPPABLE_HEADERS);
  const entry = c.DIALECT_FILE ?? dialectEntry(c.DIALECT);
  const dialect = entry.build?.({ writeMethods: parseMethodGlobs(c.JSONRPC_WRITE_METHODS) }) ?? entry.dialect;
  const pace = paceParams(c);
  const budget = entry.batchBudget === 'required' ? undefined : entry.batchBudget;
  // The superRefine above refused a required budget left unset without adaptive pacing.
  const batchRate = c.BATCH_RATE_PER_SEC ?? budget?.ratePerSec ?? pace?.initialRatePerSec ?? 1;
  return {
    ...c,
    UPSTREAM_URL: c.UPSTREAM_URL ?? entry.upstreamUrl,
    BATCH_MAX_OPS: c.BATCH_MAX_OPS ?? dialect.maxOps,
    BATCH_MAX_BYTES: c.BATCH_MAX_BYTES ?? entry.maxBytes ?? 4 * 1_048_576,
    BATCH_RATE_PER_SEC: batchRate,
    BATCH_BURST: c.BATCH_BURST ?? budget?.burst ?? Math.max(1, Math.ceil(batchRate)),
    dialect,
    restLimit,
    droppableHeaders: 'invalid' in headers ? new Set() : headers,
    priorityRules: rulesOf(c.PRIORITY_RULES),
    upstreamDefaulted: present.UPSTREAM_URL === undefined,
    pace,
  };
}

/** PRIORITY_RULES parsed (the schema refused a value that is not rules). */
function rulesOf(text: string | undefined): PriorityRules | undefined {
  if (text === undefined) return undefined;
  const rules = parsePriorityRules(text);
  return 'invalid' in rules ? undefined : rules;
}

/**
 * A value quoted in a one-line message: control characters shown escaped, length bounded, and the
 * credentials of a URL (`scheme://user:password@host`) left out — the message goes to the logs.
 */
function oneLine(value: string): string {
  const safe = value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1…@');
  const shown = JSON.stringify(safe.length > 100 ? `${safe.slice(0, 100)}…` : safe).slice(1, -1);
  return shown;
}
