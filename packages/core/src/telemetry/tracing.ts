// Traces through the OpenTelemetry API only (the SDK, if any, is the app's): one client span per
// upstream call with a link to every member caller's span — the OpenTelemetry way to model batching.
// Without a registered SDK every call here is a no-op.

import {
  context,
  type Link,
  propagation,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { Lane } from '../batcher/op.js';

const tracer = () => trace.getTracer('batch-proxy');

export interface UpstreamSpan {
  readonly span: Span;
  /** `traceparent` (and friends) for the upstream call, so the upstream joins the batch's trace. */
  readonly headers: Record<string, string>;
}

export function startUpstreamSpan(
  appId: string,
  lane: Lane,
  method: string,
  members: readonly (SpanContext | undefined)[],
): UpstreamSpan {
  const links: Link[] = [];
  for (const ctx of members) if (ctx && trace.isSpanContextValid(ctx)) links.push({ context: ctx });
  const span = tracer().startSpan(lane === 'batch' ? 'POST batch' : `${method} single`, {
    kind: SpanKind.CLIENT,
    links,
    attributes: {
      'http.request.method': lane === 'batch' ? 'POST' : method,
      'batch_proxy.app_id': appId,
      'batch_proxy.lane': lane,
      'batch_proxy.batch.size': members.length,
    },
  });
  const headers: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), headers);
  return { span, headers };
}

export function endUpstreamSpan(span: Span, status: number | Error): void {
  if (typeof status === 'number') {
    span.setAttribute('http.response.status_code', status);
    if (status >= 500 || status === 429) span.setStatus({ code: SpanStatusCode.ERROR });
  } else {
    span.setStatus({ code: SpanStatusCode.ERROR, message: status.message });
  }
  span.end();
}
