// The data listener's Hono app: classifies each call (SPEC §3), queues batchable ones in the engine,
// passes the rest through, and answers every caller exactly once (SPEC §6, §8).

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
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
import { isJsonContentType, parseRequestTarget, type Route, route } from './classify.js';
import { errorResponse } from './http-errors.js';
import type { ProxyMetrics, RequestKind } from './metrics.js';
import { passThrough } from './passthrough.js';

export interface AppDeps {
  readonly dialect: BatchDialect;
  readonly scheduler: Scheduler;
  readonly upstream: UpstreamClient;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics | undefined;
  readonly bodyLimitBytes: number;
  /** Maps a caller's Authorization to the credential its ops are grouped (and sent) under. */
  readonly credentialOf: (appId: string, authorization: string | undefined) => Promise<string | ProxyError>;
  /** Whether the proxy still takes new calls (false while draining). */
  readonly accepting: () => boolean;
}

type Env = { Bindings: HttpBindings };

export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.all('*', async (c) => {
    const started = performance.now();
    const incoming = c.env.incoming;
    const rawRequestId = incoming.headers['x-request-id'];
    const requestId =
      typeof rawRequestId === 'string' && rawRequestId.length <= 200 ? rawRequestId : randomUUID();
    let kind: RequestKind = 'rejected';
    let response: Response;
    let timing: Timing | undefined;
    // The caller's server span (HTTP semantic conventions), child of its incoming traceparent.
    const method = incoming.method ?? 'GET';
    const span = trace.getTracer('batch-proxy').startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': method, 'batch_proxy.request_id': requestId },
      },
      propagation.extract(ROOT_CONTEXT, incoming.headers),
    );
    try {
      const outcome = await handle(deps, incoming, requestId, c.env.outgoing, span);
      kind = outcome.kind;
      timing = outcome.timing;
      response = outcome.response;
    } catch (error) {
      const failure =
        error instanceof ProxyError
          ? error
          : new ProxyError('PROXY_INTERNAL', 'internal error', { cause: error });
      if (failure.status >= 500) deps.logger.error({ err: error, requestId }, 'request failed');
      response = errorResponse(failure, requestId);
    }
    span.setAttribute('http.response.status_code', response.status);
    span.setAttribute('batch_proxy.kind', kind);
    if (timing)
      span.setAttributes({ 'batch_proxy.lane': timing.lane, 'batch_proxy.batch.size': timing.batchSize });
    if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    deps.metrics?.request(kind, response.status);
    if (deps.logger.isLevelEnabled('info')) {
      deps.logger.info(
        {
          requestId,
          method: incoming.method,
          route: routeTemplate(incoming.url ?? '/'),
          kind,
          status: response.status,
          ms: round(performance.now() - started),
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
    return response;
  });

  return app;
}

interface Outcome {
  readonly kind: RequestKind;
  readonly response: Response;
  readonly timing?: Timing | undefined;
}

async function handle(
  deps: AppDeps,
  incoming: IncomingMessage,
  requestId: string,
  outgoing: HttpBindings['outgoing'],
  span: Span,
): Promise<Outcome> {
  if (!deps.accepting()) {
    const error = new ProxyError('PROXY_DRAINING', 'the proxy is shutting down', { retryAfterSec: 1 });
    return { kind: 'rejected', response: errorResponse(error, requestId, { connection: 'close' }) };
  }
  const method = incoming.method ?? 'GET';
  const target = parseRequestTarget(incoming.url ?? '/');
  if (target instanceof ProxyError) return reject(target, requestId);

  // The caller's disconnect: queued ops are dropped, pass-through calls aborted.
  const abort = new AbortController();
  const onClose = () => {
    if (!outgoing.writableFinished) abort.abort();
  };
  outgoing.once('close', onClose);

  const r: Route = route(deps.dialect, method, target.pathname, incoming.headers);
  const pathAndQuery = target.pathname + target.search;

  if (r.kind === 'pass' || r.kind === 'client-batch') {
    const bucket = r.kind === 'client-batch' ? 'batch' : 'rest';
    const kind: RequestKind = r.kind === 'client-batch' ? 'client-batch' : 'passthrough';
    if (!r.target)
      return {
        kind,
        response: await forward(deps, incoming, method, pathAndQuery, undefined, abort, requestId, span),
      };
    return admitted(deps, r.target.appId, bucket, abort, requestId, kind, () =>
      forward(deps, incoming, method, pathAndQuery, undefined, abort, requestId, span),
    );
  }

  // Batchable by method, path and headers: now the body decides.
  const body = await readBody(incoming, deps.bodyLimitBytes);
  if (body instanceof ProxyError) return reject(body, requestId);
  const passBuffered = () =>
    admitted(deps, r.target.appId, 'rest', abort, requestId, 'passthrough', () =>
      forward(deps, incoming, method, pathAndQuery, body, abort, requestId, span),
    );

  let text: string | undefined;
  if (body.length > 0) {
    if (!isJsonContentType(incoming.headers['content-type'])) return passBuffered();
    text = decodeJson(body);
    if (text === undefined) {
      return reject(new ProxyError('PROXY_MALFORMED_JSON', 'the request body is not valid JSON'), requestId);
    }
  } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    return passBuffered(); // a write without a body: let the upstream judge it
  }

  const apiVersionHeader = incoming.headers[deps.dialect.apiVersionHeader];
  const built = deps.dialect.toOp({
    method: r.method,
    target: r.target,
    query: new URLSearchParams(target.search),
    body: text,
    apiVersion: typeof apiVersionHeader === 'string' ? apiVersionHeader : undefined,
  });
  if ('passThrough' in built) return passBuffered();

  const credential = await deps.credentialOf(r.target.appId, incoming.headers.authorization);
  if (credential instanceof ProxyError) return reject(credential, requestId);

  const answer = await deps.scheduler.submit({
    appId: r.target.appId,
    credential,
    op: built.op satisfies OpRequest,
    signal: abort.signal,
    spanContext: span.spanContext(),
  });
  outgoing.off('close', onClose);
  return { kind: 'batched', response: answerResponse(answer, requestId), timing: answer.timing };
}

async function admitted(
  deps: AppDeps,
  appId: string,
  bucket: 'batch' | 'rest',
  abort: AbortController,
  requestId: string,
  kind: RequestKind,
  send: () => Promise<Response>,
): Promise<Outcome> {
  const release = await deps.scheduler.admit(appId, bucket, abort.signal);
  if (release instanceof ProxyError) return reject(release, requestId);
  try {
    const response = await send();
    return { kind, response };
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
  abort: AbortController,
  requestId: string,
  span: Span,
): Promise<Response> {
  // The upstream joins the caller's trace as a child of this proxy's server span.
  const traceHeaders: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), traceHeaders);
  const hasBody =
    body !== undefined ||
    incoming.headers['content-length'] !== undefined ||
    incoming.headers['transfer-encoding'] !== undefined;
  // undici destroys a request body it stops reading (an upstream that answers before the upload
  // ends): relay it, so the caller's own stream survives and is drained, keeping its connection.
  let relay: PassThrough | undefined;
  if (body === undefined && hasBody) {
    const pipe = new PassThrough();
    relay = pipe;
    incoming.pipe(pipe);
    pipe.on('close', () => {
      if (!incoming.readableEnded) {
        incoming.unpipe(pipe);
        incoming.resume();
      }
    });
  }
  try {
    const response = await passThrough(deps.upstream, {
      method,
      pathAndQuery,
      headers: { ...incoming.headers, ...traceHeaders },
      body: body ?? relay,
      signal: abort.signal,
    });
    if (!response.headers.has('x-request-id')) response.headers.set('x-request-id', requestId);
    return response;
  } catch (error) {
    if (error instanceof ProxyError) return errorResponse(error, requestId);
    throw error;
  }
}

function reject(error: ProxyError, requestId: string): Outcome {
  return { kind: 'rejected', response: errorResponse(error, requestId) };
}

/**
 * Reads the whole body, refusing more than `limit` bytes (413) without buffering past it. The rest of
 * a refused body is read and dropped (up to a bound), so the 413 reaches a client that is still
 * sending instead of a reset, and the connection stays usable.
 */
function readBody(incoming: IncomingMessage, limit: number): Promise<Buffer | ProxyError> {
  const tooLarge = () =>
    new ProxyError('PROXY_BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`);
  const declared = Number(incoming.headers['content-length']);
  const discardBound = Math.max(limit * 4, 8 * 1024 * 1024);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = Number.isFinite(declared) && declared > limit;
    if (refused && declared > discardBound) {
      incoming.destroy();
      resolve(tooLarge());
      return;
    }
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (!refused && size > limit) refused = true;
      if (refused) {
        chunks.length = 0;
        if (size > discardBound) {
          incoming.destroy();
          resolve(tooLarge());
        }
        return;
      }
      chunks.push(chunk);
    });
    incoming.on('end', () => {
      if (refused) resolve(tooLarge());
      else resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size));
    });
    incoming.on('error', () => resolve(new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away')));
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as JSON text when it is valid UTF-8 JSON; undefined otherwise. */
function decodeJson(body: Buffer): string | undefined {
  try {
    const text = utf8.decode(body);
    JSON.parse(text);
    return text;
  } catch {
    return undefined;
  }
}

function answerResponse(answer: Answer, requestId: string): Response {
  const timingHeader = answer.timing ? serverTiming(answer.timing) : undefined;
  if (answer.kind === 'error') {
    return errorResponse(answer.error, requestId, timingHeader ? { 'server-timing': timingHeader } : {});
  }
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId };
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

export function serverTiming(t: Timing): string {
  return `queue;dur=${round(t.queueMs)}, upstream;dur=${round(t.upstreamMs)}, batch;desc="${t.batchSize}", lane;desc="${t.lane}"`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
