// A fake Salesforce org on loopback for tests and demos: the Composite resource
// (`POST /services/data/vXX.X/composite`) with its documented rules (composite.ts), single REST calls on
// the same sObject and query paths (store.ts), bearer sessions that can expire, the org's API request
// limit over a rolling window where a composite is one call (usage.ts), `Sforce-Limit-Info` on every
// answer to an authorized call, and injectable faults (faults.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Answer, BatchServer, type Codec, isJsonType } from '../fake-upstream/batch-server.js';
import { clearPlan } from '../fake-upstream/fault-plan.js';
import { parseComposite } from './composite.js';
import { corruptResults, type FaultFields, type FaultPlan, takeFault } from './faults.js';
import { runComposite } from './run-composite.js';
import { SalesforceStore, type SfRecord, type SfResult, type StoreSeed, sfError } from './store.js';
import { type ApiLimit, ApiUsage, DEFAULT_API_LIMIT } from './usage.js';

export { MAX_QUERY_SUBREQUESTS, MAX_SUBREQUESTS } from './composite.js';
export type { Fault, FaultPlan } from './faults.js';
export type { SfRecord, StoreSeed } from './store.js';
export type { ApiLimit } from './usage.js';

export interface FakeSalesforceOptions extends StoreSeed {
  /** Accepted bearer tokens (session ids / OAuth access tokens). */
  tokens: string[];
  /** The org's API request limit (default 15,000 calls per 24 h). */
  apiLimit?: ApiLimit;
  /** The clock (ms) of the rolling window. Default performance.now. */
  clock?: () => number;
  /**
   * Order of a composite's results. The docs never promise request order (each result carries its
   * referenceId "to easily associate subrequests with their results"), so by default the fake
   * shuffles them; 'request' keeps the order of the examples.
   */
  answerOrder?: 'shuffled' | 'request';
  /** Added to every answer (ms), after the work is done. Default 0. */
  latencyMs?: number | (() => number);
  /** Seed of the PRNG behind execution/answer order and random faults. Default: random. */
  seed?: number;
  port?: number;
  host?: string;
  onCall?: (call: FakeSalesforceCall) => void;
}

export interface FakeSalesforceCall {
  callId: number;
  method: string;
  target: string;
  status: number;
  /** Subrequests of a composite call that was executed. */
  subrequests?: number;
  ms: number;
}

/** One per request that reached the records (single call or subrequest), whatever its status. */
export interface ExecutedRequest {
  method: string;
  /** As executed (references resolved), from `/services/data/`. */
  url: string;
  body: unknown;
  /** A subrequest's `httpHeaders`, or a single call's own headers; lower-case names. */
  headers: Record<string, string>;
  status: number;
  via: 'composite' | 'single';
  callId: number;
  referenceId?: string;
  /** Increasing in execution order. */
  executedAt: number;
}

export interface CompositeRecord {
  callId: number;
  allOrNone: boolean;
  subrequests: Array<{ referenceId: string; method: string; url: string }>;
}

export interface FakeSalesforceStats {
  /** Composite calls counted against the limit (executed, refused 400, or faulted). */
  compositeCalls: number;
  singleCalls: number;
  /** Calls refused 403 REQUEST_LIMIT_EXCEEDED (not counted). */
  overLimit: number;
  /** Calls refused 401 INVALID_SESSION_ID (not counted). */
  unauthorized: number;
  /** Subrequest count of every composite call executed. */
  compositeSizes: number[];
  faultsApplied: number;
}

export interface FakeSalesforce {
  url: string;
  seed: number;
  executed: ExecutedRequest[];
  composites: CompositeRecord[];
  stats: FakeSalesforceStats;
  faults: FaultPlan;
  /** Calls counted in the current window, and the limit: what `Sforce-Limit-Info` says. */
  apiUsage(): { used: number; limit: number };
  /** A record as stored now. */
  record(type: string, id: string): SfRecord | undefined;
  /** From now on this token is refused 401 INVALID_SESSION_ID. */
  expireSession(token: string): void;
  /** A new API limit from now on (calls already counted stay counted). */
  setApiLimit(limit: ApiLimit): void;
  /** Records, sessions, usage, stats, faults back to how they started. */
  reset(): void;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json;charset=UTF-8';
const BODY_LIMIT_BYTES = 6 * 1024 * 1024;

function codec(): Codec {
  return {
    headers: (answer) => ({ 'Content-Type': JSON_TYPE, ...answer.headers }),
    faultAnswer: (status, retryAfterSec, body) => ({
      status,
      headers: retryAfterSec === undefined ? {} : { 'Retry-After': String(retryAfterSec) },
      body: body ?? [
        {
          message: `injected ${status}`,
          errorCode: status === 503 ? 'SERVER_UNAVAILABLE' : 'UNKNOWN_EXCEPTION',
        },
      ],
    }),
    bug: (message) => ({ status: 500, body: [{ message, errorCode: 'UNKNOWN_EXCEPTION' }] }),
  };
}

export async function startFakeSalesforce(opts: FakeSalesforceOptions): Promise<FakeSalesforce> {
  const onCall = opts.onCall;
  const server = new BatchServer({
    codec: codec(),
    bodyLimitBytes: BODY_LIMIT_BYTES,
    latencyMs: opts.latencyMs,
    seed: opts.seed,
    onCall:
      onCall &&
      (({ size, ...call }) => onCall({ ...call, ...(size === undefined ? {} : { subrequests: size }) })),
  });
  const clock = opts.clock ?? (() => performance.now());
  const store = new SalesforceStore(opts);
  const usage = new ApiUsage(opts.apiLimit ?? DEFAULT_API_LIMIT);
  const expired = new Set<string>();
  const tokens = new Set(opts.tokens);
  let executedAt = 0;

  const emptyStats = (): FakeSalesforceStats => ({
    compositeCalls: 0,
    singleCalls: 0,
    overLimit: 0,
    unauthorized: 0,
    compositeSizes: [],
    faultsApplied: 0,
  });

  const fake: FakeSalesforce = {
    url: '',
    seed: server.seed,
    executed: [],
    composites: [],
    stats: emptyStats(),
    faults: { queue: [] },
    apiUsage: () => ({ used: usage.used(clock()), limit: usage.limit }),
    record: (type, id) => store.get(type, id),
    expireSession: (token) => expired.add(token),
    setApiLimit: (limit) => usage.set(limit),
    reset() {
      store.reset();
      usage.reset(opts.apiLimit ?? DEFAULT_API_LIMIT);
      expired.clear();
      fake.executed.length = 0;
      fake.composites.length = 0;
      Object.assign(fake.stats, emptyStats());
      clearPlan(fake.faults);
      server.reset();
      executedAt = 0;
    },
    close: () => Promise.resolve(),
  };

  /** Every answer to an authorized call tells the usage, counted this call included. */
  const withUsage = (answer: Answer): Answer => ({
    ...answer,
    headers: { ...answer.headers, 'Sforce-Limit-Info': usage.header(clock()) },
  });
  const reply = (res: ServerResponse, answer: Answer) => server.reply(res, answer);

  const run = (
    callId: number,
    via: ExecutedRequest['via'],
    req: { method: string; url: string; body: unknown },
    headers: Record<string, string>,
    referenceId?: string,
  ): SfResult => {
    const result = store.execute(req);
    fake.executed.push({
      method: req.method,
      url: req.url,
      body: req.body,
      headers,
      status: result.status,
      via,
      callId,
      ...(referenceId === undefined ? {} : { referenceId }),
      executedAt: ++executedAt,
    });
    return result;
  };

  const handleComposite = async (
    req: IncomingMessage,
    res: ServerResponse,
    callId: number,
    fault: FaultFields | undefined,
  ) => {
    const { buf, tooLarge } = await server.readBody(req);
    if (tooLarge) return reply(res, withUsage(sfError(413, 'REQUEST_TOO_LARGE', 'Request body too large')));
    if (!isJsonType(req.headers['content-type'])) {
      return reply(
        res,
        withUsage(sfError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json')),
      );
    }
    let payload: unknown;
    try {
      payload = JSON.parse(buf.toString('utf8'));
    } catch {
      return reply(
        res,
        withUsage(sfError(400, 'JSON_PARSER_ERROR', 'Unexpected character in the request body')),
      );
    }
    const parsed = parseComposite(payload);
    if (!parsed.ok) return reply(res, withUsage(sfError(400, parsed.errorCode, parsed.message)));
    const { composite } = parsed;
    await server.serve(res, fault, () => {
      fake.stats.compositeSizes.push(composite.subrequests.length);
      server.executedBatch(res, composite.subrequests.length);
      fake.composites.push({
        callId,
        allOrNone: composite.allOrNone,
        subrequests: composite.subrequests.map(({ referenceId, method, url }) => ({
          referenceId,
          method,
          url,
        })),
      });
      const results = runComposite(composite, {
        store,
        random: server.orderRandom,
        answerOrder: opts.answerOrder ?? 'shuffled',
        execute: (sub, headers, referenceId) => run(callId, 'composite', sub, headers, referenceId),
      });
      return withUsage({
        status: 200,
        body: { compositeResponse: fault ? corruptResults(results, fault) : results },
      });
    });
  };

  const handleSingle = async (
    req: IncomingMessage,
    res: ServerResponse,
    callId: number,
    method: string,
    fault: FaultFields | undefined,
  ) => {
    const { buf, tooLarge } = await server.readBody(req);
    if (tooLarge) return reply(res, withUsage(sfError(413, 'REQUEST_TOO_LARGE', 'Request body too large')));
    let body: unknown;
    if (buf.length > 0 && method !== 'GET' && method !== 'DELETE') {
      try {
        body = JSON.parse(buf.toString('utf8'));
      } catch {
        return reply(
          res,
          withUsage(sfError(400, 'JSON_PARSER_ERROR', 'Unexpected character in the request body')),
        );
      }
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && k !== 'authorization') headers[k] = v;
    await server.serve(res, fault, () => {
      const r = run(callId, 'single', { method, url: req.url ?? '/', body }, headers);
      // A 204 has no body on the wire (a composite result says `body: null`).
      return withUsage({
        status: r.status,
        headers: r.headers,
        ...(r.status === 204 ? {} : { body: r.body }),
      });
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const { callId } = server.arrive(req, res, method);
    const target = req.url ?? '/';
    const m = /^\/services\/data\/v\d+\.\d+(\/[^?#]*)?/.exec(target);
    if (!m) {
      req.resume();
      return reply(res, sfError(404, 'NOT_FOUND', 'The requested resource does not exist'));
    }
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined || !tokens.has(token) || expired.has(token)) {
      fake.stats.unauthorized++;
      req.resume();
      return reply(res, sfError(401, 'INVALID_SESSION_ID', 'Session expired or invalid'));
    }
    const isComposite = /^\/composite\/?$/.test(m[1] ?? '');
    if (!usage.take(clock())) {
      fake.stats.overLimit++;
      req.resume();
      return reply(res, withUsage(sfError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.')));
    }
    if (isComposite) fake.stats.compositeCalls++;
    else fake.stats.singleCalls++;
    if (isComposite && method !== 'POST') {
      req.resume();
      return reply(
        res,
        withUsage(
          sfError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are POST`),
        ),
      );
    }
    const fault = takeFault(fake.faults, isComposite ? 'batch' : 'single', server.faultRandom);
    if (fault) fake.stats.faultsApplied++;
    server.guard(
      res,
      isComposite ? handleComposite(req, res, callId, fault) : handleSingle(req, res, callId, method, fault),
    );
  };

  const listening = await server.listen(onRequest, opts);
  fake.url = listening.url;
  fake.close = listening.close;
  return fake;
}
