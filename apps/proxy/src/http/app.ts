// The data listener: classifies each call (SPEC §3), queues batchable ones in the engine,
// passes the rest through, and answers every caller exactly once (SPEC §6, §8). The pieces: the call's
// record (call-record.ts), the calls that bypass the queue (forward.ts), the answers it writes
// (respond.ts).

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  type Answer,
  type BatchDialect,
  type OpRequest,
  ProxyError,
  type Scheduler,
  type UpstreamClient,
} from '@batch-proxy/core';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import type { AccessLog } from './access-log.js';
import type { Auth } from './auth.js';
import { decodeJson, readBody } from './body.js';
import { beginCall, type Call, endCall, newRequestId, type RecordDeps } from './call-record.js';
import { readHints } from './caller-hints.js';
import type { CallTracker } from './calls.js';
import { admitted, forward } from './forward.js';
import type { PriorityRules } from './priority-rules.js';
import type { CallMetrics } from './recorded.js';
import { answerParts, errorParts, refuse, writeAnswer } from './respond.js';
import {
  canonicalPath,
  carriedHeaders,
  isJsonContentType,
  type PassThroughWhy,
  parseRequestTarget,
  type Route,
  route,
} from './route.js';

export interface AppDeps {
  readonly dialect: BatchDialect;
  readonly scheduler: Scheduler;
  readonly upstream: UpstreamClient;
  readonly logger: Logger;
  readonly metrics: CallMetrics | undefined;
  /** One line per answered call, by ACCESS_LOG's policy (none when omitted). */
  readonly access?: AccessLog;
  /** Whether an OpenTelemetry SDK is registered: server spans per call (default true). */
  readonly traced?: boolean;
  readonly bodyLimitBytes: number;
  /** BATCH_DROPPABLE_HEADERS: header names added to the allow-list of headers a batch may drop. */
  readonly droppableHeaders?: ReadonlySet<string>;
  /** PRIORITY_RULES: priorities by method and path for calls without `x-batch-priority`. */
  readonly priorityRules?: PriorityRules;
  /**
   * `verify` (AUTH_MODE=app-token): every call's credential is checked before anything else — before
   * it takes a token or reaches the upstream, on every route (SPEC §8c). `forward`: the caller's
   * Authorization is the credential, judged by the upstream.
   */
  readonly auth?: 'verify' | 'forward';
  /** Maps a caller's Authorization to the credential its ops are grouped (and sent) under. */
  readonly credentialOf: Auth['credentialOf'];
  /** Whether the proxy still takes new calls (false while draining). */
  readonly accepting: () => boolean;
  /** Counts each call until its answer is written, for the drain. */
  readonly calls?: CallTracker;
}

const NO_ACCESS_LOG: AccessLog = { record: () => {} };
/** The query of most calls: none. The dialect only reads it. */
const NO_QUERY = new URLSearchParams();

/**
 * A batched call, once its op is queued: its answer comes from the engine and is written straight to
 * node's response when it comes, so what a held call keeps is its own record and op.
 */
class Queued {
  constructor(readonly answer: Promise<Answer>) {}
}

/**
 * The data listener: node's request listener, not a Hono app. A batched call — nearly every call — is
 * answered by writing its op's answer straight to node's response, so it pays for no Request, Context
 * or router match and no promise of a framework's response handling (issue #17: 6 µs of the stack's
 * ~34 µs floor per call, measured). What the handler answers with a Response — a refusal, a
 * pass-through's streamed answer — is written by @hono/node-server, as before: its streaming,
 * back-pressure and caller-gone handling are what those answers need.
 */
export function createApp(deps: AppDeps): RequestListener {
  const record: RecordDeps = {
    traced: deps.traced ?? true,
    metrics: deps.metrics,
    access: deps.access ?? NO_ACCESS_LOG,
    calls: deps.calls,
  };
  const respond = responseWriter(deps);
  return (incoming, outgoing) => {
    let call: Call;
    try {
      call = beginCall(record, incoming, outgoing);
    } catch (error) {
      lastResort(deps, outgoing, error, newRequestId());
      return;
    }
    const { requestId } = call;
    const answer = (response: Response | Queued): void => {
      if (response instanceof Queued) {
        response.answer.then(
          (a) =>
            guarded(deps, outgoing, requestId, () => answerQueued(deps, record, incoming, outgoing, call, a)),
          (error: unknown) =>
            guarded(deps, outgoing, requestId, () =>
              answerFault(deps, record, incoming, outgoing, call, error),
            ),
        );
        return;
      }
      endCall(record, incoming, call, response.status);
      respond(incoming, outgoing, response, requestId);
    };
    handle(deps, incoming, call).then(
      (response) => guarded(deps, outgoing, requestId, () => answer(response)),
      (error: unknown) => guarded(deps, outgoing, requestId, () => answer(failed(deps, error, call))),
    );
  };
}

/**
 * Runs one step of answering a call. A fault in it (a bug, or a fault in the fault path itself) is
 * logged and the caller answered 500 or cut: never an unhandled rejection, which would end the process
 * (SPEC §8c: no request ends the process).
 */
function guarded(deps: AppDeps, outgoing: ServerResponse, requestId: string, step: () => void): void {
  try {
    step();
  } catch (error) {
    lastResort(deps, outgoing, error, requestId);
  }
}

/**
 * Writes a handler's Response through @hono/node-server's request listener, whose fetch callback
 * takes the Response the handler made. The listener calls it (or, when node-server cannot make a
 * Request of the call — a Host or target it would refuse — its error handler) before its first await,
 * so the Response is handed over synchronously: the handler has judged the call, and its answer is
 * the one written. A HEAD's answer has no body.
 */
function responseWriter(
  deps: AppDeps,
): (incoming: IncomingMessage, outgoing: ServerResponse, response: Response, requestId: string) => void {
  let handed: Response | undefined;
  const take = (): Response => {
    const response = handed;
    handed = undefined;
    if (!response) throw new Error('no response handed to the writer');
    return response;
  };
  const write = getRequestListener(take, { errorHandler: take });
  return (incoming, outgoing, response, requestId) => {
    handed = incoming.method === 'HEAD' && response.body ? new Response(null, response) : response;
    // The listener's promise: a fault while it writes (its cached-response path catches nothing) is
    // this call's fault, never an unhandled rejection.
    write(incoming, outgoing).catch((error: unknown) => lastResort(deps, outgoing, error, requestId));
    handed = undefined;
  };
}

function lastResort(deps: AppDeps, outgoing: ServerResponse, error: unknown, requestId: string): void {
  try {
    deps.logger.error({ err: error, requestId }, 'request failed');
    if (outgoing.headersSent) {
      if (!outgoing.writableEnded) outgoing.destroy();
      return;
    }
    const failure = new ProxyError('PROXY_INTERNAL', 'internal error', { cause: error });
    writeAnswer(outgoing, errorParts(failure, requestId));
  } catch {
    outgoing.destroy();
  }
}

/**
 * A queued op's answer: written, then noted on the call (metric, access log, span) with the status
 * the caller got. A fault before the write answers 500 instead; a fault in the noting comes after
 * the caller has its answer and is only logged: a call is recorded at most once.
 */
function answerQueued(
  deps: AppDeps,
  record: RecordDeps,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  call: Call,
  answer: Answer,
): void {
  let status: number;
  try {
    call.kind = 'batched';
    call.timing = answer.timing;
    if (answer.kind === 'error') call.code = answer.error.code;
    else call.source = 'upstream';
    const parts = answerParts(answer, call.requestId, call);
    writeAnswer(outgoing, parts);
    status = parts.status;
  } catch (error) {
    answerFault(deps, record, incoming, outgoing, call, error);
    return;
  }
  try {
    endCall(record, incoming, call, status);
  } catch (error) {
    deps.logger.error({ err: error, requestId: call.requestId }, 'request failed');
  }
}

/** A fault while answering a queued call (a bug, not a condition): a 500, logged, as for any call. */
function answerFault(
  deps: AppDeps,
  record: RecordDeps,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  call: Call,
  error: unknown,
): void {
  const failure = new ProxyError('PROXY_INTERNAL', 'internal error', { cause: error });
  deps.logger.error({ err: error, requestId: call.requestId }, 'request failed');
  call.source = 'proxy';
  call.code = failure.code;
  const parts = errorParts(failure, call.requestId);
  writeAnswer(outgoing, parts);
  endCall(record, incoming, call, parts.status);
}

function failed(deps: AppDeps, error: unknown, call: Call): Response {
  const failure =
    error instanceof ProxyError
      ? error
      : new ProxyError('PROXY_INTERNAL', 'internal error', { cause: error });
  if (failure.status >= 500) deps.logger.error({ err: error, requestId: call.requestId }, 'request failed');
  return refuse(call, failure);
}

async function handle(deps: AppDeps, incoming: IncomingMessage, call: Call): Promise<Response | Queued> {
  if (!deps.accepting()) {
    const error = new ProxyError('PROXY_DRAINING', 'the proxy is shutting down', { retryAfterSec: 1 });
    return refuse(call, error, { connection: 'close' });
  }
  const target = parseRequestTarget(incoming.url ?? '/');
  if (target instanceof ProxyError) return refuse(call, target);
  const hints = readHints(incoming.headers, call.method, target.pathname, deps.priorityRules);
  call.maxWaitMs = hints.maxWaitMs;
  call.priority = hints.priority;
  call.ignored = hints.ignored;
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
    // The caller's group, as its queued calls are keyed: a throttled group's pause holds these too.
    let credential = incoming.headers.authorization ?? '';
    if (deps.auth === 'verify') {
      const refused = r.target
        ? await deps.credentialOf(r.target.appId, incoming.headers.authorization)
        : new ProxyError('PROXY_UNAUTHORIZED', 'only /v1/{appId}/... calls are accepted with app tokens');
      if (refused instanceof ProxyError) return refuse(call, refused);
      credential = refused;
    }
    call.kind = r.kind === 'client-batch' ? 'client-batch' : 'passthrough';
    call.why = r.why;
    const send = () => forward(deps, incoming, pathAndQuery, undefined, call);
    if (!r.target) return send();
    return admitted(
      deps,
      r.target.appId,
      r.kind === 'client-batch' ? 'batch' : 'rest',
      call,
      send,
      credential,
    );
  }

  // Batchable by method, path and headers: now the body decides.
  const body = await readBody(incoming, deps.bodyLimitBytes);
  if (body instanceof ProxyError) return refuse(call, body);
  const passBuffered = (why: PassThroughWhy) => {
    call.kind = 'passthrough';
    call.why = why;
    // Its group's pause holds it too (passthrough auth: the caller's credential is its group; with
    // app tokens the app's one group never pauses alone, its 429s pause the app's bucket).
    const group = deps.auth === 'verify' ? undefined : (incoming.headers.authorization ?? '');
    return admitted(
      deps,
      r.target.appId,
      'rest',
      call,
      () => forward(deps, incoming, pathAndQuery, body, call),
      group,
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
    query: target.search === '' ? NO_QUERY : new URLSearchParams(target.search),
    body: text,
    apiVersion: typeof apiVersionHeader === 'string' ? apiVersionHeader : undefined,
    headers: carriedHeaders(deps.dialect, incoming.headers),
    search: target.search,
  });
  if ('passThrough' in built) return passBuffered({ reason: built.reason });

  const pending = deps.credentialOf(r.target.appId, incoming.headers.authorization);
  const credential = pending instanceof Promise ? await pending : pending;
  if (credential instanceof ProxyError) return refuse(call, credential);

  const answer = deps.scheduler.submit({
    appId: r.target.appId,
    credential,
    op: built.op satisfies OpRequest,
    signal: call.gone,
    verified: deps.auth === 'verify',
    ...(call.maxWaitMs === undefined ? {} : { maxWaitMs: call.maxWaitMs }),
    ...(call.priority === undefined ? {} : { priority: call.priority }),
    ...(call.span ? { spanContext: call.span.spanContext() } : {}),
  });
  return new Queued(answer);
}
