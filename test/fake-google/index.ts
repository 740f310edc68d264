// A fake Google API upstream on loopback for tests and demos: batching by `POST /batch/{api}/{version}`
// (multipart/mixed, at most 100 parts else 400, answers in random part order), single calls
// `/{api}/{version}/…`, bearer tokens per user, a per-user request quota where each part counts as one
// request (a part over it is answered 429 with Retry-After and not run), and injectable faults: a
// whole call's status (429, 5xx, before or after running), and one part's answer malformed.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Answer, BatchServer, type Codec } from '../fake-upstream/batch-server.js';
import { clearPlan, type FaultPlan, type TransportFault, takeFault } from '../fake-upstream/fault-plan.js';
import { type BucketLimit, Gcra } from '../fake-upstream/gcra.js';
import { shuffled } from '../fake-upstream/prng.js';
import { googleError, type Result, Store } from './store.js';
import { type BatchPart, boundaryIn, encodeAnswer, type PartAnswer, parseBatchBody } from './wire.js';

export type { BucketLimit } from '../fake-upstream/gcra.js';

/** Documented: at most 100 calls in one batch request. */
export const MAX_PARTS = 100;
const BODY_LIMIT_BYTES = 4 * 1024 * 1024;

export interface FakeGoogleOptions {
  /** Accepted bearer tokens → the user each acts for (`users/me`). */
  tokens: Record<string, string>;
  /** Each user's request quota (a part counts as one request). Undefined = unlimited. */
  perUser?: BucketLimit;
  /** The most parts one batch may carry (default 100, as documented). */
  maxParts?: number;
  latencyMs?: number | (() => number);
  seed?: number;
  port?: number;
  host?: string;
  onCall?: (call: {
    callId: number;
    method: string;
    target: string;
    status: number;
    size?: number;
    ms: number;
  }) => void;
}

/** One request that reached the resources. */
export interface Executed {
  user: string;
  /** The Authorization the request ran under (a batch's outer one, or a part's own). */
  credential: string;
  method: string;
  /** Path and query as sent, `/{api}/{version}/…`. */
  target: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  via: 'batch' | 'single';
  callId: number;
}

/** A fault on one part's answer, taken by the first part whose target starts with `target`. */
export interface PartFault {
  target: string;
  kind: 'bad-status-line' | 'no-content-id' | 'twice' | 'missing';
}

export interface FakeGoogle {
  url: string;
  seed: number;
  executed: Executed[];
  /** Every batch executed: its callId, API scope and the parts' `METHOD target`, in the order sent. */
  batches: Array<{ callId: number; scope: string; parts: string[] }>;
  stats: {
    batchCalls: number;
    singleCalls: number;
    batchSizes: number[];
    /** Parts answered 429 inside a 200 batch (not run). */
    throttledParts: number;
    /** Single calls answered 429. */
    throttledCalls: number;
    unauthorized: number;
    /** Batches refused whole with 400 (malformed, too many parts). */
    refused: number;
  };
  /** Whole-call faults (`on`: batch by default). */
  faults: FaultPlan<TransportFault>;
  partFaults: PartFault[];
  /** A user's next `n` requests (parts or single calls) are answered 429 with `retryAfterSec`. */
  throttleUser(user: string, n: number, retryAfterSec?: number): void;
  reset(): void;
  close(): Promise<void>;
}

function googleCodec(): Codec {
  return {
    headers: (answer) =>
      answer.raw === undefined && answer.body !== undefined
        ? { 'Content-Type': 'application/json; charset=UTF-8', ...answer.headers }
        : { ...answer.headers },
    faultAnswer: (status, retryAfterSec, body) => {
      const error = googleError(status, `injected ${status}`);
      return {
        status,
        headers: retryAfterSec === undefined ? {} : { 'Retry-After': String(retryAfterSec) },
        body: body ?? error.body,
      };
    },
    bug: (message) => googleError(500, message),
  };
}

export async function startFakeGoogle(opts: FakeGoogleOptions): Promise<FakeGoogle> {
  const server = new BatchServer({
    codec: googleCodec(),
    bodyLimitBytes: BODY_LIMIT_BYTES,
    latencyMs: opts.latencyMs,
    seed: opts.seed,
    onCall: opts.onCall,
  });
  const store = new Store();
  const maxParts = opts.maxParts ?? MAX_PARTS;
  let quota = opts.perUser ? new Gcra(opts.perUser) : undefined;
  const throttles = new Map<string, { left: number; retryAfterSec: number }>();
  const empty = (): FakeGoogle['stats'] => ({
    batchCalls: 0,
    singleCalls: 0,
    batchSizes: [],
    throttledParts: 0,
    throttledCalls: 0,
    unauthorized: 0,
    refused: 0,
  });

  const fake: FakeGoogle = {
    url: '',
    seed: server.seed,
    executed: [],
    batches: [],
    stats: empty(),
    faults: { queue: [] },
    partFaults: [],
    throttleUser(user, n, retryAfterSec = 1) {
      throttles.set(user, { left: n, retryAfterSec });
    },
    reset() {
      store.reset();
      fake.executed.length = 0;
      fake.batches.length = 0;
      fake.partFaults.length = 0;
      Object.assign(fake.stats, empty());
      clearPlan(fake.faults);
      throttles.clear();
      quota = opts.perUser ? new Gcra(opts.perUser) : undefined;
      server.reset();
    },
    close: () => Promise.resolve(),
  };

  /** Why this user's request is not run now: a 429 with its Retry-After; undefined = run it. */
  const throttled = (user: string, now: number): Result | undefined => {
    const forced = throttles.get(user);
    if (forced && forced.left > 0) {
      forced.left--;
      return googleError(429, 'User-rate limit exceeded.', { 'Retry-After': String(forced.retryAfterSec) });
    }
    const waitMs = quota?.take(user, now) ?? 0;
    if (waitMs <= 0) return undefined;
    return googleError(429, 'User-rate limit exceeded.', {
      'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))),
    });
  };

  interface Ctx {
    user: string;
    credential: string;
    scope: string;
    callId: number;
  }

  /** Runs one request (a part or a single call) of `user` on the resources and records it. */
  const run = (
    c: Ctx,
    via: 'batch' | 'single',
    method: string,
    target: string,
    headers: Record<string, string>,
    body: string,
  ): Result => {
    const path = (target.split('?')[0] ?? '').replace(/\/users\/me(?=\/|$)/, `/users/${c.user}`);
    const result = path.startsWith(`/${c.scope}/`)
      ? store.execute({ method, path, headers, body })
      : googleError(400, 'All requests in a batch must go to the same API.');
    fake.executed.push({
      user: c.user,
      credential: c.credential,
      method,
      target,
      headers,
      body,
      status: result.status,
      via,
      callId: c.callId,
    });
    return result;
  };

  const runBatch = (c: Ctx, parts: BatchPart[], outer: Record<string, string>): PartAnswer[] => {
    const now = performance.now();
    const answers: PartAnswer[] = [];
    for (const part of parts) {
      // Documented: outer headers other than Content-* apply to every part; a part's own win.
      const headers = { ...outer, ...part.headers };
      const stop = throttled(c.user, now);
      if (stop) fake.stats.throttledParts++;
      const result = stop ?? run(c, 'batch', part.method, part.target, headers, part.body);
      const answer: PartAnswer = {
        contentId: part.contentId,
        status: result.status,
        headers: result.headers,
        body: result.body,
      };
      const f = fake.partFaults.findIndex((pf) => part.target.startsWith(pf.target));
      const fault = f === -1 ? undefined : fake.partFaults.splice(f, 1)[0];
      if (fault?.kind === 'missing') continue;
      if (fault?.kind === 'bad-status-line') answer.badStatusLine = true;
      if (fault?.kind === 'no-content-id') answer.contentId = undefined;
      answers.push(answer);
      if (fault?.kind === 'twice') answers.push({ ...answer, status: 200, body: { twice: true } });
    }
    return answers;
  };

  const handleBatch = async (
    req: IncomingMessage,
    res: ServerResponse,
    c: Ctx,
    fault: TransportFault | undefined,
  ) => {
    const { buf } = await server.readBody(req);
    const refuse = (message: string) => {
      fake.stats.refused++;
      server.reply(res, googleError(400, message));
    };
    const boundary = boundaryIn(req.headers['content-type']);
    if (!boundary) return refuse('A batch request must be multipart/mixed with a boundary.');
    const parsed = parseBatchBody(buf.toString('utf8'), boundary);
    if (!parsed.ok) return refuse(parsed.message);
    if (parsed.parts.length > maxParts)
      return refuse(`A batch request cannot carry more than ${maxParts} calls; got ${parsed.parts.length}.`);
    if (parsed.parts.some((p) => p.contentType?.toLowerCase() !== 'application/http'))
      return refuse('Each part of a batch request must be Content-Type: application/http.');
    const outer: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && !k.startsWith('content-')) outer[k] = v;
    await server.serve(res, fault, (): Answer => {
      fake.stats.batchSizes.push(parsed.parts.length);
      server.executedBatch(res, parsed.parts.length);
      fake.batches.push({
        callId: c.callId,
        scope: c.scope,
        parts: parsed.parts.map((p) => `${p.method} ${p.target}`),
      });
      const answers = shuffled(runBatch(c, parsed.parts, outer), server.orderRandom);
      const out = `batch_fake_${c.callId}`;
      return {
        status: 200,
        headers: { 'Content-Type': `multipart/mixed; boundary=${out}` },
        raw: encodeAnswer(answers, out),
      };
    });
  };

  const handleSingle = async (
    req: IncomingMessage,
    res: ServerResponse,
    c: Ctx,
    method: string,
    target: string,
    fault: TransportFault | undefined,
  ) => {
    const { buf } = await server.readBody(req);
    const stop = throttled(c.user, performance.now());
    if (stop) {
      fake.stats.throttledCalls++;
      return server.reply(res, stop);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    await server.serve(res, fault, () => run(c, 'single', method, target, headers, buf.toString('utf8')));
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const { callId } = server.arrive(req, res, method);
    const target = req.url ?? '/';
    const m = /^\/(batch\/)?([a-z][a-z0-9]*)\/(v[0-9][a-z0-9.]*)(\/[^?#]*)?/.exec(target);
    const isBatch = m?.[1] !== undefined;
    if (!m || (isBatch ? m[4] !== undefined : m[4] === undefined)) {
      req.resume();
      return server.reply(res, googleError(404, `No API at ${target}.`));
    }
    const credential = req.headers.authorization ?? '';
    const user = opts.tokens[/^Bearer (.+)$/.exec(credential)?.[1] ?? ''];
    if (user === undefined) {
      fake.stats.unauthorized++;
      req.resume();
      return server.reply(res, {
        ...googleError(401, 'Request had invalid authentication credentials.'),
        headers: { 'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/"' },
      });
    }
    if (isBatch && method !== 'POST') {
      req.resume();
      return server.reply(res, googleError(400, 'A batch request must be a POST.'));
    }
    const c: Ctx = { user, credential, scope: `${m[2]}/${m[3]}`, callId };
    if (isBatch) fake.stats.batchCalls++;
    else fake.stats.singleCalls++;
    const fault = takeFault(
      fake.faults,
      (f) => (f.on ?? 'batch') === 'any' || (f.on ?? 'batch') === (isBatch ? 'batch' : 'single'),
      server.faultRandom,
    );
    server.guard(
      res,
      isBatch ? handleBatch(req, res, c, fault) : handleSingle(req, res, c, method, target, fault),
    );
  };

  const listening = await server.listen(onRequest, opts);
  fake.url = listening.url;
  fake.close = listening.close;
  return fake;
}
