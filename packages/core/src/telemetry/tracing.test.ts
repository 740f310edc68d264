import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../batcher/clock.js';
import { Scheduler } from '../batcher/scheduler.js';
import type { UpstreamRequest } from '../dialect/dialect.js';
import { schedulerOptions } from '../testing/scheduler-options.js';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

describe('tracing', () => {
  it('gives each upstream batch call a client span linked to every member caller’s span', async () => {
    const sent: UpstreamRequest[] = [];
    // A manual clock: the three callers meet in one window whatever the machine's load.
    const clock = new ManualClock();
    const scheduler = new Scheduler(
      schedulerOptions({
        clock,
        upstream: {
          call: async (request) => {
            sent.push(request);
            const ops = JSON.parse(request.body ?? '[]') as Array<[number]>;
            return { status: 200, headers: {}, body: JSON.stringify(ops.map(([seq]) => [seq, 200, {}])) };
          },
        },
        authorize: () => 'k',
      }),
    );
    const tracer = trace.getTracer('test');
    const callers = [1, 2, 3].map((i) => tracer.startSpan(`caller ${i}`, { kind: SpanKind.SERVER }));
    const answers = Promise.all(
      callers.map((span, i) =>
        scheduler.submit({
          appId: 'app',
          credential: 'k',
          op: { method: 'GET', path: `/users/u${i}`, query: {}, body: undefined, apiVersion: undefined },
          spanContext: span.spanContext(),
        }),
      ),
    );
    await clock.advance(10);
    await answers;
    for (const span of callers) span.end();

    const client = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    expect(client).toHaveLength(1);
    const [batchSpan] = client;
    expect(batchSpan?.links.map((l) => l.context.spanId).sort()).toEqual(
      callers.map((s) => s.spanContext().spanId).sort(),
    );
    expect(batchSpan?.attributes).toMatchObject({
      'batch_proxy.batch.size': 3,
      'http.response.status_code': 200,
    });
    // The upstream call carries the batch span's context.
    expect(sent[0]?.headers.traceparent).toContain(batchSpan?.spanContext().spanId);
  });
});
