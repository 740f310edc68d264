// What the edge knows about one call, from arrival to its answer: its request id, its server span (only
// when tracing is on), its cancellation, and, once answered, the request metric and the access-log line.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Priority, Timing } from '@batch-proxy/core';
import {
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { AccessLog } from './access-log.js';
import { CallerGone } from './caller-gone.js';
import type { CallTracker } from './calls.js';
import type { AnswerSource, CallMetrics, RequestKind } from './recorded.js';
import type { PassThroughWhy } from './route.js';

export interface Call {
  readonly requestId: string;
  readonly method: string;
  readonly started: number;
  /** The caller's server span (HTTP semantic conventions), child of its incoming traceparent. */
  readonly span: Span | undefined;
  /** Aborted when the caller goes away: queued ops are dropped, pass-through calls cut. */
  readonly gone: CallerGone;
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
  /** The caller's own longest wait (`x-batch-max-wait-ms`), when it sent a usable one. */
  maxWaitMs: number | undefined;
  /** The call's priority (`x-batch-priority` or PRIORITY_RULES); undefined = normal. */
  priority: Priority | undefined;
  /** Hint headers the proxy ignored (a value it cannot use), named in the Server-Timing. */
  ignored: readonly string[] | undefined;
}

export interface RecordDeps {
  /** Whether server spans are made (an OpenTelemetry SDK is registered); off, no span work per call. */
  readonly traced: boolean;
  readonly metrics: CallMetrics | undefined;
  readonly access: AccessLog;
  readonly calls: CallTracker | undefined;
}

/** Request ids for callers that sent none: unique per process start, then a counter (no UUID per call). */
const bootId = randomUUID().slice(0, 8);
let generated = 0;
export const newRequestId = (): string => `${bootId}-${(++generated).toString(36)}`;

let tracer: Tracer | undefined;

export function beginCall(deps: RecordDeps, incoming: IncomingMessage, outgoing: ServerResponse): Call {
  const rawRequestId = incoming.headers['x-request-id'];
  const requestId =
    typeof rawRequestId === 'string' && rawRequestId.length <= 200 ? rawRequestId : newRequestId();
  const method = incoming.method ?? 'GET';
  let span: Span | undefined;
  if (deps.traced) {
    tracer ??= trace.getTracer('batch-proxy');
    span = tracer.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': method, 'batch_proxy.request_id': requestId },
      },
      propagation.extract(ROOT_CONTEXT, incoming.headers),
    );
  }
  const call: Call = {
    requestId,
    method,
    started: performance.now(),
    span,
    gone: new CallerGone(),
    kind: 'rejected',
    timing: undefined,
    appId: undefined,
    why: undefined,
    source: 'proxy',
    code: undefined,
    maxWaitMs: undefined,
    priority: undefined,
    ignored: undefined,
  };
  const ended = deps.calls?.begin();
  // `on`, not `once`: 'close' comes once, and `once` would wrap the listener per call.
  outgoing.on('close', () => {
    if (!outgoing.writableFinished) call.gone.abort();
    ended?.();
  });
  return call;
}

/** Span attributes, the request metric and the access-log line, once the answer is known. */
export function endCall(deps: RecordDeps, incoming: IncomingMessage, call: Call, status: number): void {
  const { span, kind, timing, why } = call;
  if (span) {
    span.setAttribute('http.response.status_code', status);
    span.setAttribute('batch_proxy.kind', kind);
    if (timing)
      span.setAttributes({ 'batch_proxy.lane': timing.lane, 'batch_proxy.batch.size': timing.batchSize });
    if (why) span.setAttribute('batch_proxy.passthrough.reason', why.reason);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }
  const ms = performance.now() - call.started;
  deps.metrics?.request({ kind, status, source: call.source, reason: why?.reason, seconds: ms / 1000 });
  deps.access.record({
    requestId: call.requestId,
    appId: call.appId,
    method: call.method,
    url: incoming.url ?? '/',
    kind,
    status,
    source: call.source,
    code: call.code,
    why,
    ms,
    timing,
  });
}
