// A fake Microsoft Graph upstream on loopback for tests and benchmarks: JSON batching
// (`POST /{v1.0|beta}/$batch`) with the documented rules, single calls, bearer tokens per tenant,
// in-memory users/messages/groups, a hidden per-tenant throttling limit that can change at runtime
// (per-request 429s inside a 200 batch, whole-call 429s), and injectable faults.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { BatchServer, type Codec, isJsonType } from '../fake-upstream/batch-server.js';
import { clearPlan } from '../fake-upstream/fault-plan.js';
import { type BucketLimit, Gcra } from '../fake-upstream/gcra.js';
import { shuffled } from '../fake-upstream/prng.js';
import { type BatchRequest, type DependencyShape, executionOrder, parseBatch } from './batch.js';
import {
  type BatchResponse,
  corruptResponses,
  type FaultFields,
  type FaultPlan,
  takeFault,
} from './faults.js';
import { checkGraphToken, DEFAULT_JWT_KEY } from './jwt.js';
import { type ExecContext, type GraphResult, GraphStore, graphError, type TenantSeed } from './store.js';
import { type Caller, type UserFaults, type UserStats, UserTracker, userKey } from './users.js';

export type { BucketLimit } from '../fake-upstream/gcra.js';
export { MAX_BATCH_REQUESTS } from './batch.js';
export type { Fault, FaultPlan, FaultTarget } from './faults.js';
export type { GraphClaims } from './jwt.js';
export { DEFAULT_JWT_KEY, forgeGraphToken, signGraphToken } from './jwt.js';
export type { TenantSeed, UserSeed } from './store.js';
export type { UserFailure, UserFaults, UserSelector, UserStats, UserThrottle } from './users.js';

export const VERSIONS = ['v1.0', 'beta'] as const;

export interface TenantConfig extends TenantSeed {
  /** Accepted bearer tokens -> the user id the token acts for (`/me`), or null for an app-only token. */
  tokens: Record<string, string | null>;
}

/**
 * The hidden throttling limit of one tenant. `requests` counts every request: a single call is one,
 * each request inside a batch is one. `batchCalls` counts `$batch` HTTP calls. Undefined = unlimited.
 */
export interface GraphLimits {
  requests?: BucketLimit;
  batchCalls?: BucketLimit;
}

export interface FakeGraphOptions {
  tenants: Record<string, TenantConfig>;
  /** The limit every tenant starts with. */
  limits?: GraphLimits;
  /** Added to every answer (ms), after the work is done. Default 0. */
  latencyMs?: number | (() => number);
  /** Seed of the PRNG behind execution/response order and random faults. Default: random. */
  seed?: number;
  port?: number;
  host?: string;
  /** Called once per HTTP call when its answer has been written. */
  onCall?: (call: FakeGraphCall) => void;
  /**
   * The key of the fake's token issuer (default DEFAULT_JWT_KEY). Besides the opaque `tokens` of each
   * tenant, the fake accepts a JWT signed with it (signGraphToken) whose `tid` is a tenant's name: it
   * acts for its `oid` (none: app-only). A JWT signed otherwise (forgeGraphToken) is refused 401.
   */
  jwtKey?: string;
}

/** One `$batch` call the fake executed: what shared it, and in which dependency shape. */
export interface BatchRecord {
  callId: number;
  tenant: string;
  version: string;
  /** The exact Authorization header. */
  credential: string;
  shape: DependencyShape;
  requests: Array<{ id: string; method: string; url: string; dependsOn: string[] }>;
}

export interface FakeGraphCall {
  callId: number;
  method: string;
  target: string;
  status: number;
  /** Requests in a `$batch` call that was executed. */
  requests?: number;
  ms: number;
}

/** One per request that reached the resources (batched or single), whatever its status. */
export interface ExecutedRequest {
  tenant: string;
  version: string;
  method: string;
  /** As sent: relative to the version, with its query. */
  url: string;
  /** Path only, normalised to start with `/`. */
  path: string;
  query: Record<string, string>;
  /** The request's own headers, lower-case names (batch: the op's `headers`; single: the call's). */
  headers: Record<string, string>;
  body: unknown;
  status: number;
  /** The exact Authorization header of the HTTP call. */
  credential: string;
  via: 'batch' | 'single';
  callId: number;
  /** The request's `id` inside its batch. */
  requestId?: string;
  /** A global counter, increasing in execution order. */
  executedAt: number;
}

export interface FakeGraphStats {
  /** Authorized calls (including those then refused with 429 or 400). */
  batchCalls: number;
  singleCalls: number;
  throttled: {
    /** `$batch` calls refused whole (batch-call limit). */
    batchCall: number;
    /** Single calls refused (request limit). */
    singleCall: number;
    /** Requests inside a 200 batch answered 429 (request limit); never executed. */
    inBatch: number;
  };
  /** Requests answered 424 because one they depend on failed. */
  failedDependency: number;
  unauthorized: number;
  /** Request count of every `$batch` call that was executed. */
  batchSizes: number[];
  /** performance.now() (ms) of what the limiter let in: batch calls, and requests (single or in a batch). */
  arrivals: { batchCalls: number[]; requests: number[] };
  faultsApplied: number;
}

export interface FakeGraph {
  url: string;
  seed: number;
  executed: ExecutedRequest[];
  stats: FakeGraphStats;
  faults: FaultPlan;
  /** Per-user faults, mutable at runtime: throttle one user, fail one user (see users.ts). */
  users: UserFaults;
  /**
   * What the fake saw of one user: by user id (a token's `/me` or `oid`), or by token for an app-only
   * one. All zero for a user not seen (yet).
   */
  userStats(user: string): UserStats;
  /** Every `$batch` call executed, in arrival order. */
  batches: BatchRecord[];
  /** Resources, executed, stats, counters, faults and limits back to how they started. */
  reset(): void;
  /**
   * Changes the hidden limit from now on, for one tenant or (no tenant) for all of them. Buckets start
   * fresh, so the first calls after a change may use a full burst.
   */
  setLimit(limits: GraphLimits, tenant?: string): void;
  close(): Promise<void>;
}

const BODY_LIMIT_BYTES = 4 * 1024 * 1024;
const JSON_TYPE = 'application/json';

interface Limiters {
  requests: Gcra | undefined;
  batchCalls: Gcra | undefined;
}

function makeLimiters(limits: GraphLimits | undefined): Limiters {
  return {
    requests: limits?.requests ? new Gcra(limits.requests) : undefined,
    batchCalls: limits?.batchCalls ? new Gcra(limits.batchCalls) : undefined,
  };
}

/** Graph's throttling answer (learn.microsoft.com/graph/throttling, "Sample response"). */
function throttled(waitMs: number, scope?: string): GraphResult {
  const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
  return {
    status: 429,
    headers: {
      'Content-Type': JSON_TYPE,
      'Retry-After': retryAfter,
      ...(scope === undefined ? {} : { 'x-ms-throttle-scope': scope }),
    },
    body: {
      error: {
        code: 'TooManyRequests',
        message: 'Please retry again later.',
        innerError: { code: '429', message: 'Please retry after', status: '429' },
      },
    },
  };
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** Splits a request url relative to the version into path and query; undefined when it is absolute. */
function splitUrl(url: string): { path: string; query: URLSearchParams } | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith('//')) return undefined;
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  return {
    path: rawPath.startsWith('/') ? rawPath : `/${rawPath}`,
    query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
  };
}

/** Graph's wire format: each answer's own headers plus a request id, errors as `{ error: { code, message } }`. */
function graphCodec(): Codec {
  let answers = 0;
  return {
    headers: (answer) => ({ ...answer.headers, 'request-id': `fake-request-${++answers}` }),
    faultAnswer: (status, retryAfterSec, body) => ({
      status,
      headers: {
        'Content-Type': JSON_TYPE,
        ...(retryAfterSec === undefined ? {} : { 'Retry-After': String(retryAfterSec) }),
      },
      body: body ?? { error: { code: 'InjectedFault', message: `injected ${status}` } },
    }),
    bug: (message) => graphError(500, 'FakeBug', message),
    reset: () => {
      answers = 0;
    },
  };
}

export async function startFakeGraph(opts: FakeGraphOptions): Promise<FakeGraph> {
  const onCall = opts.onCall;
  const server = new BatchServer({
    codec: graphCodec(),
    bodyLimitBytes: BODY_LIMIT_BYTES,
    latencyMs: opts.latencyMs,
    seed: opts.seed,
    onCall:
      onCall &&
      (({ size, ...call }) => onCall({ ...call, ...(size === undefined ? {} : { requests: size }) })),
  });
  const seed = server.seed;
  const tokens = new Map<string, { tenant: string; me: string | null }>();
  const seeds: Record<string, TenantSeed> = {};
  for (const [tenant, config] of Object.entries(opts.tenants)) {
    const users = { ...config.users };
    for (const [token, me] of Object.entries(config.tokens)) {
      tokens.set(token, { tenant, me });
      if (me !== null && !users[me]) users[me] = {};
    }
    seeds[tenant] = { users, ...(config.groups ? { groups: config.groups } : {}) };
  }
  const store = new GraphStore(seeds);
  let defaultLimiters = makeLimiters(opts.limits);
  const tenantLimiters = new Map<string, Limiters>();
  const limitersOf = (tenant: string) => tenantLimiters.get(tenant) ?? defaultLimiters;
  let execCounter = 0;
  const users = new UserTracker();
  const jwtKey = opts.jwtKey ?? DEFAULT_JWT_KEY;

  const emptyStats = (): FakeGraphStats => ({
    batchCalls: 0,
    singleCalls: 0,
    throttled: { batchCall: 0, singleCall: 0, inBatch: 0 },
    failedDependency: 0,
    unauthorized: 0,
    batchSizes: [],
    arrivals: { batchCalls: [], requests: [] },
    faultsApplied: 0,
  });

  const fake: FakeGraph = {
    url: '',
    seed,
    executed: [],
    stats: emptyStats(),
    faults: { queue: [] },
    users: users.faults,
    userStats: (user) => users.stats(user),
    batches: [],
    setLimit(limits, tenant) {
      if (tenant === undefined) {
        defaultLimiters = makeLimiters(limits);
        tenantLimiters.clear();
      } else {
        tenantLimiters.set(tenant, makeLimiters(limits));
      }
    },
    reset() {
      store.reset();
      fake.setLimit(opts.limits ?? {});
      fake.executed.length = 0;
      fake.batches.length = 0;
      users.reset();
      // Same object, so a test holding `fake.stats` keeps seeing the live numbers.
      Object.assign(fake.stats, emptyStats());
      clearPlan(fake.faults);
      server.reset();
      execCounter = 0;
    },
    close: () => Promise.resolve(),
  };

  const reply = (res: ServerResponse, result: GraphResult): void => server.reply(res, result);

  interface CallCtx {
    tenant: string;
    version: string;
    me: string | null;
    credential: string;
    callId: number;
    caller: Caller;
  }

  const execContext = (c: CallCtx): ExecContext => ({
    tenant: c.tenant,
    version: c.version,
    me: c.me,
    baseUrl: fake.url,
  });

  const runOne = (
    c: CallCtx,
    via: 'batch' | 'single',
    method: string,
    url: string,
    headers: Record<string, string>,
    body: unknown,
    requestId?: string,
  ): GraphResult => {
    const split = splitUrl(url);
    if (!split)
      return graphError(400, 'BadRequest', 'Invalid request URL: it must be relative to the version.');
    const result = store.execute(execContext(c), {
      method,
      path: split.path,
      query: split.query,
      headers,
      body,
    });
    users.stats(userKey(c.caller)).executed++;
    fake.executed.push({
      tenant: c.tenant,
      version: c.version,
      method,
      url,
      path: split.path,
      query: Object.fromEntries(split.query),
      headers,
      body,
      status: result.status,
      credential: c.credential,
      via,
      callId: c.callId,
      ...(requestId === undefined ? {} : { requestId }),
      executedAt: ++execCounter,
    });
    return result;
  };

  const handleSingle = async (
    req: IncomingMessage,
    res: ServerResponse,
    c: CallCtx,
    method: string,
    url: string,
    fault: FaultFields | undefined,
  ) => {
    const { buf, tooLarge } = await server.readBody(req);
    if (tooLarge)
      return reply(res, graphError(413, 'RequestEntityTooLarge', 'The request body is too large.'));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && k !== 'authorization') headers[k] = v;
    }
    let body: unknown;
    if (buf.length > 0 && method !== 'GET') {
      if (isJsonType(headers['content-type'])) {
        try {
          body = JSON.parse(buf.toString('utf8'));
        } catch {
          return reply(
            res,
            graphError(
              400,
              'BadRequest',
              'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
            ),
          );
        }
      } else {
        body = buf;
      }
    }
    await server.serve(res, fault, () => runOne(c, 'single', method, url, headers, body));
  };

  /** Runs the requests of a parsed batch in the service's order and builds the 200 answer. */
  const runBatch = (c: CallCtx, requests: BatchRequest[], order: number[]): BatchResponse[] => {
    const now = performance.now();
    const statuses = new Map<number, number>();
    const responses: BatchResponse[] = [];
    const limiter = limitersOf(c.tenant).requests;
    for (const index of order) {
      const r = requests[index] as BatchRequest;
      const failed = r.dependsOn.find((d) => (statuses.get(d) ?? 0) >= 400);
      let result: GraphResult;
      if (failed !== undefined) {
        fake.stats.failedDependency++;
        result = graphError(
          424,
          'FailedDependency',
          `The request depends on request '${requests[failed]?.id}', which failed.`,
        );
      } else {
        const userThrottle = users.throttle(c.caller, c.callId, now);
        const waitMs = userThrottle ? 0 : (limiter?.take(c.tenant, now) ?? 0);
        if (userThrottle) {
          result = throttled(userThrottle.waitMs, userThrottle.scope);
        } else if (waitMs > 0) {
          fake.stats.throttled.inBatch++;
          result = throttled(waitMs);
        } else {
          fake.stats.arrivals.requests.push(now);
          const headers = lowerKeys(r.headers);
          // Graph carries JSON bodies as JSON; another Content-Type carries the bytes base64url-encoded.
          const body =
            r.body !== undefined && !isJsonType(headers['content-type']) && typeof r.body === 'string'
              ? Buffer.from(r.body, 'base64url')
              : r.body;
          result = runOne(c, 'batch', r.method, r.url, headers, body, r.id);
        }
      }
      statuses.set(index, result.status);
      responses.push({
        id: r.id,
        status: result.status,
        headers: result.headers,
        ...(result.body === undefined ? {} : { body: result.body }),
      });
    }
    return responses;
  };

  const handleBatch = async (
    req: IncomingMessage,
    res: ServerResponse,
    c: CallCtx,
    fault: FaultFields | undefined,
  ) => {
    const { buf, tooLarge } = await server.readBody(req);
    if (tooLarge)
      return reply(res, graphError(413, 'RequestEntityTooLarge', 'The request body is too large.'));
    if (!isJsonType(req.headers['content-type'])) {
      return reply(res, graphError(415, 'UnsupportedMediaType', 'A $batch body must be application/json.'));
    }
    let payload: unknown;
    try {
      payload = JSON.parse(buf.toString('utf8'));
    } catch {
      return reply(res, graphError(400, 'BadRequest', 'Invalid batch payload format.'));
    }
    const parsed = parseBatch(payload);
    if (!parsed.ok) return reply(res, graphError(400, 'BadRequest', parsed.message));
    await server.serve(res, fault, () => {
      fake.stats.batchSizes.push(parsed.requests.length);
      server.executedBatch(res, parsed.requests.length);
      fake.batches.push({
        callId: c.callId,
        tenant: c.tenant,
        version: c.version,
        credential: c.credential,
        shape: parsed.shape,
        requests: parsed.requests.map((r) => ({
          id: r.id,
          method: r.method,
          url: r.url,
          dependsOn: r.dependsOn.map((d) => parsed.requests[d]?.id ?? ''),
        })),
      });
      const responses = runBatch(c, parsed.requests, executionOrder(parsed, server.orderRandom));
      // Documented: responses may come in any order. The fake makes sure they do.
      const out = shuffled(responses, server.orderRandom);
      return {
        status: 200,
        headers: { 'Content-Type': JSON_TYPE },
        body: { responses: fault ? corruptResponses(out, fault) : out },
      };
    });
  };

  /** A JWT token's caller: valid and for a known tenant, else undefined (a forged one is counted). */
  const fromJwt = (token: string): { tenant: string; me: string | null } | undefined => {
    const check = checkGraphToken(token, jwtKey);
    if (check.kind === 'forged') {
      if (typeof check.claims.oid === 'string') users.stats(check.claims.oid).forged++;
      return undefined;
    }
    if (check.kind !== 'valid' || !Object.hasOwn(seeds, check.claims.tid)) return undefined;
    const me = check.claims.oid ?? null;
    if (me !== null) store.ensureUser(check.claims.tid, me);
    return { tenant: check.claims.tid, me };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? 'GET').toUpperCase();
    // Arrival time: the limiter counts calls when their headers arrive.
    const { callId, at: arrival } = server.arrive(req, res, method);
    const target = req.url ?? '/';
    const m = /^\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?/.exec(target);
    const version = m?.[1] ?? '';
    if (!m || !(VERSIONS as readonly string[]).includes(version)) {
      req.resume();
      return reply(res, graphError(400, 'BadRequest', `Invalid version: ${version}`));
    }
    const rest = `${m[2] ?? '/'}${m[3] ?? ''}`;
    const isBatch = /^\/(\$|%24)batch\/?$/i.test(m[2] ?? '');

    const credential = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/i.exec(credential)?.[1];
    const who = token === undefined ? undefined : (tokens.get(token) ?? fromJwt(token));
    if (!who) {
      fake.stats.unauthorized++;
      req.resume();
      return reply(
        res,
        graphError(
          401,
          'InvalidAuthenticationToken',
          token === undefined ? 'Access token is empty.' : 'Access token validation failure.',
        ),
      );
    }
    const caller: Caller = { token: token ?? '', me: who.me };
    const c: CallCtx = { tenant: who.tenant, version, me: who.me, credential, callId, caller };
    if (isBatch && method !== 'POST') {
      req.resume();
      return reply(res, graphError(405, 'BadRequest', 'A $batch call must be a POST.'));
    }
    const kind = isBatch ? 'batch' : 'single';
    if (isBatch) fake.stats.batchCalls++;
    else fake.stats.singleCalls++;
    const seen = users.stats(userKey(caller));
    if (isBatch) seen.batchCalls++;
    else seen.singleCalls++;
    seen.arrivals.push(arrival);

    // Per-user faults come before the tenant's limit: that user's backend answers, not the tenant's.
    const failure = users.failure(caller, kind);
    if (failure) {
      req.resume();
      return server.replyFault(res, {
        status: failure.status ?? 503,
        ...(failure.retryAfterSec === undefined ? {} : { retryAfterSec: failure.retryAfterSec }),
        body: { error: { code: 'ServiceUnavailable', message: `user fault ${failure.status ?? 503}` } },
      });
    }
    const userThrottle = isBatch ? undefined : users.throttle(caller, callId, arrival);
    if (userThrottle) {
      req.resume();
      return reply(res, throttled(userThrottle.waitMs, userThrottle.scope));
    }

    const limiters = limitersOf(who.tenant);
    const waitMs = (isBatch ? limiters.batchCalls : limiters.requests)?.take(who.tenant, arrival) ?? 0;
    if (waitMs > 0) {
      if (isBatch) fake.stats.throttled.batchCall++;
      else fake.stats.throttled.singleCall++;
      req.resume();
      return reply(res, throttled(waitMs));
    }
    if (isBatch) fake.stats.arrivals.batchCalls.push(arrival);
    else fake.stats.arrivals.requests.push(arrival);

    const fault = takeFault(fake.faults, kind, who.tenant, server.faultRandom);
    if (fault) fake.stats.faultsApplied++;
    server.guard(
      res,
      isBatch ? handleBatch(req, res, c, fault) : handleSingle(req, res, c, method, rest, fault),
    );
  };

  const listening = await server.listen(onRequest, opts);
  fake.url = listening.url;
  fake.close = listening.close;
  return fake;
}
