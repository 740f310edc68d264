// The OpenTelemetry trace SDK, wired only when the standard OTEL_* variables ask for it: spans go to
// OTLP over HTTP. Otherwise nothing is registered and the API's no-op tracer costs next to nothing.

import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

export interface Tracing {
  shutdown(): Promise<void>;
}

export { tracingWanted } from './tracing-wanted.js';

/** Registers the SDK globally; the OTLP exporter reads its endpoint and headers from OTEL_*. */
export function startTracing(): Tracing {
  const provider = new TracerProvider({
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return { shutdown: () => provider.shutdown() };
}
