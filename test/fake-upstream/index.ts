// A fake TalkJS REST API upstream on loopback for e2e, chaos and load tests: the documented batch
// protocol, auth, in-memory resources, exact GCRA rate limits and injectable faults.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Answer, BatchServer, type Codec, isJsonType } from './batch-server.js';
import { clearPlan } from './fault-plan.js';
import { corruptResults, type FaultFields, type FaultPlan, takeFault } from './faults.js';
import { type BucketLimit, Gcra } from './gcra.js';
import { safeEqual, verifyAppToken } from './jwt.js';
import { shuffled } from './prng.js';
import { type OpResult, Store } from './store.js';
import {
  type CredentialFailure,
  type CredentialStats,
  type PoisonedCall,
  type ResourcePoison,
  type ResourceStats,
  TargetTracker,
} from './targeted.js';
import { type QuotaOptions, quotaHeaders, WindowQuota } from './window-quota.js';

export type { Fault, FaultPlan, FaultTarget } from './faults.js';
export type { BucketLimit } from './gcra.js';
export { signAppToken } from './jwt.js';
export type {
  CredentialFailure,
  CredentialStats,
  PoisonedCall,
  ResourcePoison,
  ResourceStats,
} from './targeted.js';
export type { QuotaOptions, QuotaStyle } from './window-quota.js';

export interface FakeUpstreamOptions {
  /** appId -> secret key. */
  apps: Record<string, string>;
  /** An undefined bucket is unlimited. */
  limits?: { batch?: BucketLimit; rest?: BucketLimit };
  /** Added to every answer (ms), after the work is done. Default 0. */
  latencyMs?: number | (() => number);
  /** Seed of the PRNG behind execution/result order and random faults. Default: random (see `seed`). */
  seed?: number;
  port?: number;
  host?: string;
  /** Called once per HTTP call when its answer has been written (for a request log). */
  onCall?: (call: FakeCall) => void;
  /**
   * A hidden quota on batch calls per window, told in every answer's headers in one style
   * (window-quota.ts), on top of `limits`. Over it: 429 with Retry-After to the window's end.
   */
  quota?: QuotaOptions;
}

/** One HTTP call the fake answered, as a request log shows it. */
export interface FakeCall {
  callId: number;
  method: string;
  /** The request target as received (path and query). */
  target: string;
  status: number;
  /** Operations in a batch call that was executed; undefined for single calls and refused batches. */
  ops?: number;
  ms: number;
}

/** One per operation that reached the resource router (batched or single), whatever its status. */
export interface ExecutedOp {
  appId: string;
  method: string;
  /** Relative to /v1/{appId}, as sent (not decoded), without query. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  /** The exact Authorization header value of the HTTP call. */
  credential: string;
  via: 'batch' | 'single';
  /** The upstream HTTP call it came in (1, 2, ... in arrival order). */
  callId: number;
  seq?: number;
  /** A global counter, increasing in execution order. */
  executedAt: number;
  /** `TalkJS-REST-Version` header (single) or `options.api_version` (batch op), when given. */
  apiVersion?: string;
}

export interface FakeUpstreamStats {
  /** Calls that arrived for a known app (including those refused with 429/401/400). */
  batchCalls: number;
  singleCalls: number;
  /** Refusals by the rate limiter only (injected 429 faults are not counted here). */
  rejected429: { batch: number; rest: number };
  unauthorized: number;
  /** Op count of every batch call that was executed. */
  batchSizes: number[];
  /** Arrival times (performance.now(), ms) of the calls the limiter let in, per bucket. */
  arrivals: { batch: number[]; rest: number[] };
  /** The limiter's refusals: when each arrived (performance.now(), ms) and how early it was. */
  rejections: Array<{ bucket: 'batch' | 'rest'; at: number; earlyMs: number }>;
  /** Faults taken from the plan. */
  faultsApplied: number;
}

export interface FakeUpstream {
  url: string;
  /** The seed in use, to reproduce an order seen in a failing run. */
  seed: number;
  executed: ExecutedOp[];
  stats: FakeUpstreamStats;
  faults: FaultPlan;
  /** Poisoned resources, mutable at runtime (see targeted.ts): a batch holding one fails whole. */
  resources: { poison: ResourcePoison[] };
  /** Failing credentials, mutable at runtime (see targeted.ts). */
  credentials: { fail: CredentialFailure[] };
  /** What the fake saw of one resource (path relative to the app, as sent); zeros if never seen. */
  resourceStats(path: string): ResourceStats;
  /** What the fake saw of one credential (exact Authorization header); zeros if never seen. */
  credentialStats(credential: string): CredentialStats;
  /** Every call a poisoned resource failed, in arrival order, with all the ops it held. */
  poisonedCalls: PoisonedCall[];
  /**
   * Clears data, executed, stats, counters, the fault plan and the targeted faults (same objects); the
   * limits as started.
   */
  reset(): void;
  /** Replaces the rate limits from now on (fresh buckets; undefined = unlimited). */
  setLimits(limits: { batch?: BucketLimit; rest?: BucketLimit }): void;
  /** Changes the hidden quota's limit from now on (with `quota`). */
  setQuotaLimit(limit: number): void;
  close(): Promise<void>;
}

/** Documented: at most 10 operations per batch call. */
export const MAX_BATCH_OPS = 10;
const BODY_LIMIT_BYTES = 5 * 1024 * 1024;
const API_VERSION = /^\d{4}-\d{2}-\d{2}$/;
const BATCH_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

type Kind = 'batch' | 'single';
type Op = [seq: number, method: string, path: string, payload?: unknown, options?: unknown];

const invalid = (message: string): OpResult => ({
  status: 400,
  body: { errorCode: 'INVALID_REQUEST', message },
});

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** TalkJS's wire format: JSON answers, errors as `{ errorCode, message }`. */
const TALKJS: Codec = {
  headers: (answer) => ({ 'content-type': 'application/json', ...answer.headers }),
  faultAnswer: (status, retryAfterSec, body) => ({
    status,
    headers: retryAfterSec === undefined ? {} : { 'retry-after': String(retryAfterSec) },
    body: body ?? { errorCode: 'INJECTED_FAULT', message: `injected ${status}` },
  }),
  bug: (message) => ({ status: 500, body: { errorCode: 'FAKE_BUG', message } }),
};

export async function startFakeUpstream(opts: FakeUpstreamOptions): Promise<FakeUpstream> {
  const onCall = opts.onCall;
  const server = new BatchServer({
    codec: TALKJS,
    bodyLimitBytes: BODY_LIMIT_BYTES,
    latencyMs: opts.latencyMs,
    seed: opts.seed,
    onCall:
      onCall && (({ size, ...call }) => onCall({ ...call, ...(size === undefined ? {} : { ops: size }) })),
  });
  const seed = server.seed;
  const limiters: Record<'batch' | 'rest', Gcra | undefined> = {
    batch: opts.limits?.batch ? new Gcra(opts.limits.batch) : undefined,
    rest: opts.limits?.rest ? new Gcra(opts.limits.rest) : undefined,
  };
  let quota = opts.quota ? new WindowQuota(opts.quota) : undefined;
  const store = new Store();
  let execCounter = 0;
  const targets = new TargetTracker();

  const fake: FakeUpstream = {
    url: '',
    seed,
    executed: [],
    stats: {
      batchCalls: 0,
      singleCalls: 0,
      rejected429: { batch: 0, rest: 0 },
      unauthorized: 0,
      batchSizes: [],
      arrivals: { batch: [], rest: [] },
      rejections: [],
      faultsApplied: 0,
    },
    faults: { queue: [] },
    resources: targets.faults.resources,
    credentials: targets.faults.credentials,
    resourceStats: (path) => targets.resource(path),
    credentialStats: (credential) => targets.credential(credential),
    poisonedCalls: targets.poisonedCalls,
    setQuotaLimit(limit) {
      quota?.setLimit(limit);
    },
    setLimits(limits) {
      limiters.batch = limits.batch ? new Gcra(limits.batch) : undefined;
      limiters.rest = limits.rest ? new Gcra(limits.rest) : undefined;
    },
    reset() {
      store.reset();
      fake.setLimits(opts.limits ?? {});
      quota = opts.quota ? new WindowQuota(opts.quota) : undefined;
      fake.executed.length = 0;
      Object.assign(fake.stats, { batchCalls: 0, singleCalls: 0, unauthorized: 0, faultsApplied: 0 });
      fake.stats.rejected429.batch = 0;
      fake.stats.rejected429.rest = 0;
      fake.stats.batchSizes.length = 0;
      fake.stats.arrivals.batch.length = 0;
      fake.stats.arrivals.rest.length = 0;
      fake.stats.rejections.length = 0;
      clearPlan(fake.faults);
      targets.reset();
      server.reset();
      execCounter = 0;
    },
    close: () => Promise.resolve(),
  };

  const reply = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers?: Record<string, string>,
  ): void => server.reply(res, { status, body, ...(headers === undefined ? {} : { headers }) });

  /** A poisoned resource's answer: the whole call fails, nothing ran. */
  const replyPoison = (res: ServerResponse, poison: ResourcePoison): void => {
    const status = poison.status ?? 500;
    reply(res, status, { errorCode: 'INTERNAL_SERVER_ERROR', message: `poisoned resource (${status})` });
  };

  const record = (op: Omit<ExecutedOp, 'executedAt'>): void => {
    targets.resource(op.path).executed++;
    fake.executed.push({ ...op, executedAt: ++execCounter });
  };

  /** Parses the JSON body of a call; a string is the 4xx problem (status in `code`). */
  const parseBody = (
    req: IncomingMessage,
    buf: Buffer,
    tooLarge: boolean,
  ): { ok: true; body: unknown } | { ok: false; status: number; message: string } => {
    if (tooLarge) return { ok: false, status: 413, message: 'body too large' };
    if (buf.length === 0) return { ok: true, body: undefined };
    if (!isJsonType(req.headers['content-type'])) {
      return { ok: false, status: 415, message: 'Content-Type must be application/json' };
    }
    try {
      return { ok: true, body: JSON.parse(buf.toString('utf8')) };
    } catch {
      return { ok: false, status: 400, message: 'malformed JSON body' };
    }
  };

  const handleSingle = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: { appId: string; callId: number; method: string; path: string; url: URL; credential: string },
    fault: FaultFields | undefined,
  ) => {
    const { buf, tooLarge } = await server.readBody(req);
    let body: unknown;
    // GET has no content upstream; a stray body is ignored rather than judged.
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      const parsed = parseBody(req, buf, tooLarge);
      if (!parsed.ok) return reply(res, parsed.status, invalid(parsed.message).body);
      body = parsed.body;
    }
    const version = req.headers['talkjs-rest-version'];
    if (version !== undefined && (typeof version !== 'string' || !API_VERSION.test(version))) {
      return reply(res, 400, invalid('bad TalkJS-REST-Version').body);
    }
    const query: Record<string, string> = {};
    for (const [k, v] of ctx.url.searchParams) query[k] = v;
    const poison = targets.opsArrived({ ...ctx, via: 'single' }, [{ method: ctx.method, path: ctx.path }]);
    if (poison) return replyPoison(res, poison);
    await server.serve(res, fault, () => {
      const result = store.execute(ctx.appId, ctx.method, ctx.path, query, body);
      record({
        appId: ctx.appId,
        method: ctx.method,
        path: ctx.path,
        query,
        body,
        status: result.status,
        credential: ctx.credential,
        via: 'single',
        callId: ctx.callId,
        ...(version === undefined ? {} : { apiVersion: version }),
      });
      return result;
    });
  };

  /** Validates one op of a batch and runs it; op-level problems answer that op only. */
  const runOp = (
    op: Op,
    ctx: { appId: string; callId: number; credential: string },
  ): [number, number, unknown] => {
    const [seq, method, path, payload, options] = op;
    let apiVersion: string | undefined;
    if (options !== undefined && options !== null) {
      if (!isObject(options)) return [seq, 400, invalid('options must be an object').body];
      if (options.api_version !== undefined) {
        if (typeof options.api_version !== 'string' || !API_VERSION.test(options.api_version)) {
          return [seq, 400, invalid('bad api_version').body];
        }
        apiVersion = options.api_version;
      }
    }
    if (!path.startsWith('/')) return [seq, 400, invalid('path must start with /').body];
    if (path.includes('?') || path.includes('#')) {
      return [seq, 400, invalid('pass query parameters in the payload of a GET, not in the path').body];
    }
    if (path === '/batch') return [seq, 400, invalid('a batch cannot contain a batch').body];
    let query: Record<string, string> = {};
    let body: unknown = payload;
    if (method === 'GET') {
      if (payload !== undefined && payload !== null) {
        if (!isObject(payload) || !Object.values(payload).every((v) => typeof v === 'string')) {
          return [seq, 400, invalid('a GET payload must map string keys to string values').body];
        }
        query = payload as Record<string, string>;
      }
      body = undefined;
    }
    const result = store.execute(ctx.appId, method, path, query, body);
    record({
      appId: ctx.appId,
      method,
      path,
      query,
      body,
      status: result.status,
      credential: ctx.credential,
      via: 'batch',
      callId: ctx.callId,
      seq,
      ...(apiVersion === undefined ? {} : { apiVersion }),
    });
    return [seq, result.status, result.body];
  };

  const handleBatch = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: { appId: string; callId: number; credential: string },
    fault: FaultFields | undefined,
  ) => {
    const { buf, tooLarge } = await server.readBody(req);
    const parsed = parseBody(req, buf, tooLarge);
    if (!parsed.ok) return reply(res, parsed.status, invalid(parsed.message).body);
    const ops = parsed.body;
    if (!Array.isArray(ops)) return reply(res, 400, invalid('the body must be an array of operations').body);
    if (ops.length === 0 || ops.length > MAX_BATCH_OPS) {
      return reply(
        res,
        400,
        invalid(`a batch holds 1 to ${MAX_BATCH_OPS} operations, got ${ops.length}`).body,
      );
    }
    const seqs = new Set<number>();
    for (const [i, op] of ops.entries()) {
      const ok =
        Array.isArray(op) &&
        op.length >= 3 &&
        op.length <= 5 &&
        typeof op[0] === 'number' &&
        Number.isFinite(op[0]) &&
        typeof op[1] === 'string' &&
        BATCH_METHODS.has(op[1]) &&
        typeof op[2] === 'string';
      if (!ok)
        return reply(res, 400, invalid(`operation ${i} is not [seq, method, path, payload?, options?]`).body);
      if (seqs.has(op[0])) return reply(res, 400, invalid(`duplicate sequence number ${op[0]}`).body);
      seqs.add(op[0]);
    }
    const poison = targets.opsArrived(
      { ...ctx, via: 'batch' },
      (ops as Op[]).map(([seq, method, path]) => ({ seq, method, path })),
    );
    if (poison) return replyPoison(res, poison);
    await server.serve(res, fault, (): Answer => {
      fake.stats.batchSizes.push(ops.length);
      server.executedBatch(res, ops.length);
      // Documented: operations may execute in any order. The fake makes sure they do.
      const results = shuffled(ops as Op[], server.orderRandom).map((op) => runOp(op, ctx));
      const out: unknown[] = shuffled(results, server.orderRandom);
      if (fault?.notArray) return { status: 200, body: { ok: true } };
      return { status: 200, body: fault ? corruptResults(out as [number, number, unknown][], fault) : out };
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    // Arrival time: the upstream's limiter counts calls when their headers arrive.
    const { callId, at: arrival } = server.arrive(req, res, method);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://fake-upstream');
    } catch {
      return reply(res, 400, invalid('bad request target').body);
    }
    const m = /^\/v1\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m) return reply(res, 404, `Could not find route ${method} ${url.pathname}`);
    let appId: string;
    try {
      appId = decodeURIComponent(m[1] ?? '');
    } catch {
      return reply(res, 404, `Could not find route ${method} ${url.pathname}`);
    }
    const path = m[2] ?? '';
    const kind: Kind = method === 'POST' && path === '/batch' ? 'batch' : 'single';
    const failing = targets.credentialCall(req.headers.authorization ?? '', kind);
    if (failing) {
      req.resume();
      const status = failing.status ?? 500;
      return reply(res, status, { errorCode: 'INJECTED_FAULT', message: `failing credential (${status})` });
    }
    const secret = Object.hasOwn(opts.apps, appId) ? opts.apps[appId] : undefined;
    if (secret === undefined)
      return reply(res, 404, { errorCode: 'APP_NOT_FOUND', message: `no app ${appId}` });
    if (kind === 'batch') fake.stats.batchCalls++;
    else fake.stats.singleCalls++;

    const bucket = kind === 'batch' ? 'batch' : 'rest';
    const waitMs = limiters[bucket]?.take(appId, arrival) ?? 0;
    if (waitMs > 0) {
      fake.stats.rejected429[bucket]++;
      fake.stats.rejections.push({ bucket, at: arrival, earlyMs: waitMs });
      req.resume();
      return reply(
        res,
        429,
        { errorCode: 'RATE_LIMITED', message: `${bucket} rate limit exceeded` },
        { 'retry-after': String(Math.ceil(waitMs / 1000)) },
      );
    }
    if (kind === 'batch' && quota && opts.quota) {
      const admitted = quota.take(appId, arrival);
      const figures = quota.figures(appId, arrival);
      for (const [name, value] of Object.entries(quotaHeaders(opts.quota.style, figures, Date.now())))
        res.setHeader(name, value);
      if (!admitted) {
        fake.stats.rejected429.batch++;
        fake.stats.rejections.push({ bucket, at: arrival, earlyMs: figures.resetInMs });
        req.resume();
        return reply(
          res,
          429,
          { errorCode: 'RATE_LIMITED', message: 'quota exceeded' },
          { 'retry-after': String(Math.ceil(figures.resetInMs / 1000)) },
        );
      }
    }
    fake.stats.arrivals[bucket].push(arrival);

    const credential = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/i.exec(credential)?.[1];
    const authorized =
      token !== undefined && (safeEqual(token, secret) || verifyAppToken(token, appId, secret) === undefined);
    if (!authorized) {
      fake.stats.unauthorized++;
      req.resume();
      return reply(res, 401, {
        errorCode: 'UNAUTHORIZED',
        message: 'missing or invalid Authorization token',
      });
    }

    const fault = takeFault(fake.faults, kind, appId, server.faultRandom);
    if (fault) fake.stats.faultsApplied++;
    server.guard(
      res,
      kind === 'batch'
        ? handleBatch(req, res, { appId, callId, credential }, fault)
        : handleSingle(req, res, { appId, callId, method, path, url, credential }, fault),
    );
  };

  const listening = await server.listen(onRequest, opts);
  fake.url = listening.url;
  fake.close = listening.close;
  return fake;
}
