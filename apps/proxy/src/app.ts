// The data listener's Hono app: classifies each call (SPEC §3), queues batchable ones in the engine,
// passes the rest through, and answers every caller exactly once (SPEC §6, §8).

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  type Answer,
  type BatchDialect,
  type OpRequest,
  ProxyError,
  type Scheduler,
  type Timing,
  type UpstreamClient,
} from '@batch-proxy/core';
import type { HttpBindings } from '@hono/node-server';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { type BodyRelay, bodyTooLarge, decodeJson, readBody, relayBody } from './body.js';
import type { CallTracker } from './calls.js';
import {
  canonicalPath,
  carriedHeaders,
  isJsonContentType,
  opRefusalReason,
  type PassThroughWhy,
  parseRequestTarget,
  type Route,
  route,
} from './classify.js';
import { errorResponse } from './http-errors.js';
import type { AnswerSource, ProxyMetrics, RequestKind } from './metrics.js';
import { passThrough } from './passthrough.js';

export interface AppDeps {
  readonly dialect: BatchDialect;
  readonly scheduler: Scheduler;
  readonly upstream: UpstreamClient;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics | undefined;
  readonly bodyLimitBytes: number;
  /** BATCH_DROPPABLE_HEADERS: header names added to the allow-list of headers a batch may drop. */
  readonly droppableHeaders?: ReadonlySet<string>;
  /**
   * `verify` (AUTH_MODE=app-token): every call's credential is checked before anything else — before
   * it takes a token or reaches the upstream, on every route (SPEC §8c). `forward`: the caller's
   * Authorization is the credential, judged by the upstream.
   */
  readonly auth?: 'verify' | 'forward';
  /** Maps a caller's Authorization to the credential its ops are grouped (and sent) under. */
  readonly credentialOf: (appId: string, authorization: string | undefined) => Promise<string | ProxyError>;
  /** Whether the proxy still takes new calls (false while draining). */
  readonly accepting: () => boolean;
  /** Counts each call until its answer is written, for the drain. */
  readonly calls?: CallTracker;
}

/** What the edge knows about one call, from arrival to the access-log line. */
interface Call {
  readonly requestId: string;
  readonly method: string;
  readonly started: number;
  /** The caller's server span (HTTP semantic conventions), child of its incoming traceparent. */
  readonly span: Span;
  /** Aborted when the caller goes away: queued ops are dropped, pass-through calls cut. */
  readonly abort: AbortController;
  kind: RequestKind;
  timing: Timing | undefined;
  /** Known once the path names an app. */
  appId: string | undefined;
  /** Why it was not batched (pass-through and client-batch calls). */
  why: PassThroughWhy | undefined;
  /** Who made the answer: the proxy (its own errors) or the upstream (its status, relayed). */
  source: AnswerSource;
  /** The proxy's error code, when the proxy made an error answer. */
  code: string | undefined;
}

type Env = { Bindings: HttpBindings; Variables: { call: Call } };

/** A request-context middleware, one handler, and one place where a thrown error becomes an answer. */
export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('*', async (c, next) => {
    const call = beginCall(deps, c.env.incoming, c.env.outgoing);
    c.set('call', call);
    await next();
    endCall(deps, c.env.incoming, call, c.res);
  });
  app.all('*', (c) => handle(deps, c.env.incoming, c.get('call')));
  app.onError((error, c) => {
    const requestId = c.get('call')?.requestId ?? randomUUID();
    const failure =
      error instanceof ProxyError
        ? error
        : new ProxyError('PROXY_INTERNAL', 'internal error', { cause: error });
    if (failure.status >= 500) deps.logger.error({ err: error, requestId }, 'request failed');
    const call = c.get('call');
    if (call) return refuse(call, failure);
    return errorResponse(failure, requestId);
  });
  return app;
}

function beginCall(deps: AppDeps, incoming: IncomingMessage, outgoing: HttpBindings['outgoing']): Call {
  const rawRequestId = incoming.headers['x-request-id'];
  const requestId =
    typeof rawRequestId === 'string' && rawRequestId.length <= 200 ? rawRequestId : randomUUID();
  const method = incoming.method ?? 'GET';
  const span = trace.getTracer('batch-proxy').startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': method, 'batch_proxy.request_id': requestId },
    },
    propagation.extract(ROOT_CONTEXT, incoming.headers),
  );
  const call: Call = {
    requestId,
    method,
    started: performance.now(),
    span,
    abort: new AbortController(),
    kind: 'rejected',
    timing: undefined,
    appId: undefined,
    why: undefined,
    source: 'proxy',
    code: undefined,
  };
  const ended = deps.calls?.begin();
  outgoing.once('close', () => {
    if (!outgoing.writableFinished) call.abort.abort();
    ended?.();
  });
  return call;
}

/** Span attributes, the request metric and the access-log line, once the answer is known. */
function endCall(deps: AppDeps, incoming: IncomingMessage, call: Call, response: Response): void {
  const { span, kind, timing, why } = call;
  span.setAttribute('http.response.status_code', response.status);
  span.setAttribute('batch_proxy.kind', kind);
  if (timing)
    span.setAttributes({ 'batch_proxy.lane': timing.lane, 'batch_proxy.batch.size': timing.batchSize });
  if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
  if (why) span.setAttribute('batch_proxy.passthrough.reason', why.reason);
  const seconds = (performance.now() - call.started) / 1000;
  deps.metrics?.request({ kind, status: response.status, source: call.source, reason: why?.reason, seconds });
  if (!deps.logger.isLevelEnabled('info')) return;
  deps.logger.info(
    {
      requestId: call.requestId,
      appId: call.appId,
      method: incoming.method,
      route: routeTemplate(incoming.url ?? '/'),
      kind,
      status: response.status,
      source: call.source,
      ...(call.code ? { code: call.code } : {}),
      // The header's name only: its value may be a credential (a Cookie).
      ...(why ? { passReason: why.reason, ...(why.header ? { passHeader: why.header } : {}) } : {}),
      ms: round(seconds * 1000),
      ...(timing
        ? {
            queueMs: round(timing.queueMs),
            upstreamMs: round(timing.upstreamMs),
            batchSize: timing.batchSize,
            lane: timing.lane,
            batchId: timing.callId,
          }
        : {}),
    },
    'request',
  );
}

async function handle(deps: AppDeps, incoming: IncomingMessage, call: Call): Promise<Response> {
  const { requestId } = call;
  if (!deps.accepting()) {
    const error = new ProxyError('PROXY_DRAINING', 'the proxy is shutting down', { retryAfterSec: 1 });
    return refuse(call, error, { connection: 'close' });
  }
  const target = parseRequestTarget(incoming.url ?? '/');
  if (target instanceof ProxyError) return refuse(call, target);
  // One spelling, one resource (SPEC §8c): the gate, ordering, collapsing, pacing and the upstream
  // all see the canonical path.
  const pathname = canonicalPath(target.pathname);
  const pathAndQuery = pathname + target.search;
  const method = call.method;
  const r: Route = route(deps.dialect, method, pathname, incoming.headers, deps.droppableHeaders);
  call.appId = r.target?.appId;

  if (r.kind === 'pass' || r.kind === 'client-batch') {
    // Unverified callers spend nothing: checked before any token is taken or any byte is forwarded.
    // (A batchable call is checked below, before it is queued: reading its body spends nothing.)
    if (deps.auth === 'verify') {
      const refused = r.target
        ? await deps.credentialOf(r.target.appId, incoming.headers.authorization)
        : new ProxyError('PROXY_UNAUTHORIZED', 'only /v1/{appId}/... calls are accepted with app tokens');
      if (refused instanceof ProxyError) return refuse(call, refused);
    }
    call.kind = r.kind === 'client-batch' ? 'client-batch' : 'passthrough';
    call.why = r.why;
    const send = () => forward(deps, incoming, method, pathAndQuery, undefined, call);
    if (!r.target) return send();
    return admitted(deps, r.target.appId, r.kind === 'client-batch' ? 'batch' : 'rest', call, send);
  }

  // Batchable by method, path and headers: now the body decides.
  const body = await readBody(incoming, deps.bodyLimitBytes);
  if (body instanceof ProxyError) return refuse(call, body);
  const passBuffered = (why: PassThroughWhy) => {
    call.kind = 'passthrough';
    call.why = why;
    return admitted(deps, r.target.appId, 'rest', call, () =>
      forward(deps, incoming, method, pathAndQuery, body, call),
    );
  };

  let text: string | undefined;
  if (body.length > 0) {
    if (!isJsonContentType(incoming.headers['content-type'])) return passBuffered({ reason: 'content-type' });
    text = decodeJson(body);
    if (text === undefined) {
      return refuse(call, new ProxyError('PROXY_MALFORMED_JSON', 'the request body is not valid JSON'));
    }
  } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    return passBuffered({ reason: 'body' }); // a write without a body: let the upstream judge it
  }

  const apiVersionHeader = incoming.headers[deps.dialect.apiVersionHeader];
  const built = deps.dialect.toOp({
    method: r.method,
    target: r.target,
    query: new URLSearchParams(target.search),
    body: text,
    apiVersion: typeof apiVersionHeader === 'string' ? apiVersionHeader : undefined,
    headers: carriedHeaders(deps.dialect, incoming.headers),
    search: target.search,
  });
  if ('passThrough' in built) return passBuffered({ reason: opRefusalReason(built.passThrough) });

  const credential = await deps.credentialOf(r.target.appId, incoming.headers.authorization);
  if (credential instanceof ProxyError) return refuse(call, credential);

  const answer = await deps.scheduler.submit({
    appId: r.target.appId,
    credential,
    op: built.op satisfies OpRequest,
    signal: call.abort.signal,
    spanContext: call.span.spanContext(),
  });
  call.kind = 'batched';
  call.timing = answer.timing;
  if (answer.kind === 'error') call.code = answer.error.code;
  else call.source = 'upstream';
  return answerResponse(answer, requestId);
}

/** The proxy's own error answer, noted on the call for the metric and the access log. */
function refuse(call: Call, error: ProxyError, extraHeaders: Record<string, string> = {}): Response {
  call.source = 'proxy';
  call.code = error.code;
  // A pass-through the proxy refused (too large, upstream unreachable) still says why it passed.
  const headers = call.why ? { ...extraHeaders, 'server-timing': passthroughTiming(call.why) } : extraHeaders;
  return errorResponse(error, call.requestId, headers);
}

/** A call that bypasses the queue waits for a token of its bucket, and gives it back when answered. */
async function admitted(
  deps: AppDeps,
  appId: string,
  bucket: 'batch' | 'rest',
  call: Call,
  send: () => Promise<Response>,
): Promise<Response> {
  const release = await deps.scheduler.admit(appId, bucket, call.abort.signal);
  if (release instanceof ProxyError) {
    call.kind = 'rejected';
    return refuse(call, release);
  }
  try {
    return await send();
  } finally {
    release();
  }
}

async function forward(
  deps: AppDeps,
  incoming: IncomingMessage,
  method: string,
  pathAndQuery: string,
  body: Buffer | undefined,
  call: Call,
): Promise<Response> {
  const { requestId } = call;
  // The upstream joins the caller's trace as a child of this proxy's server span.
  const traceHeaders: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), call.span), traceHeaders);
  const hasBody =
    body !== undefined ||
    incoming.headers['content-length'] !== undefined ||
    incoming.headers['transfer-encoding'] !== undefined;
  let relay: BodyRelay | undefined;
  if (body === undefined && hasBody) {
    // BODY_LIMIT_BYTES holds for streamed bodies too: a declared size over it is refused before
    // anything is sent, an undeclared (chunked) one as soon as it passes the limit.
    const declared = Number(incoming.headers['content-length']);
    if (Number.isFinite(declared) && declared > deps.bodyLimitBytes) {
      const refused = await readBody(incoming, deps.bodyLimitBytes);
      if (refused instanceof ProxyError) return refuse(call, refused);
    }
    relay = relayBody(incoming, deps.bodyLimitBytes);
  }
  try {
    const response = await passThrough(deps.upstream, {
      method,
      pathAndQuery,
      headers: { ...incoming.headers, ...traceHeaders },
      body: body ?? relay?.stream,
      signal: call.abort.signal,
    });
    if (!response.headers.has('x-request-id')) response.headers.set('x-request-id', requestId);
    // Why this call was not batched, for the caller (`passthrough;desc="header"`).
    if (call.why) response.headers.append('server-timing', passthroughTiming(call.why));
    call.source = 'upstream';
    return response;
  } catch (error) {
    if (relay?.tooLarge()) return refuse(call, bodyTooLarge(deps.bodyLimitBytes));
    if (error instanceof ProxyError) return refuse(call, error);
    throw error;
  }
}

function answerResponse(answer: Answer, requestId: string): Response {
  const timingHeader = answer.timing ? serverTiming(answer.timing) : undefined;
  if (answer.kind === 'error') {
    return errorResponse(answer.error, requestId, timingHeader ? { 'server-timing': timingHeader } : {});
  }
  // The upstream's own answer headers (Graph: Location, ETag…) first; the proxy's id and timing win.
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...answer.headers,
    'x-request-id': requestId,
  };
  if (timingHeader) headers['server-timing'] = timingHeader;
  const nullBody = answer.status === 204 || answer.status === 205 || answer.status === 304;
  return new Response(nullBody ? null : answer.body, { status: answer.status, headers });
}

/**
 * The route template of a request for logs: ids replaced, query dropped, so lines group by route
 * and carry no resource ids (`/v1/:appId/conversations/:id/messages`).
 */
export function routeTemplate(rawUrl: string): string {
  const path = rawUrl.split('?', 1)[0] ?? '/';
  const segments = path.split('/');
  if (segments[1] !== 'v1' || segments.length < 3) return segments.length > 8 ? '/…' : path.slice(0, 200);
  const out = ['', 'v1', ':appId'];
  for (let i = 3; i < segments.length && i < 12; i++)
    out.push(i % 2 === 0 ? ':id' : (segments[i] ?? '').slice(0, 40));
  return out.join('/');
}

function passthroughTiming(why: PassThroughWhy): string {
  return `passthrough;desc="${why.reason}"`;
}

export function serverTiming(t: Timing): string {
  return `queue;dur=${round(t.queueMs)}, upstream;dur=${round(t.upstreamMs)}, batch;desc="${t.batchSize}", lane;desc="${t.lane}"`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
