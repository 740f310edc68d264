import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../batcher/clock.js';
import { Scheduler } from '../batcher/scheduler.js';
import type { UpstreamRequest } from '../dialect/dialect.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { endUpstreamSpan, startUpstreamSpan } from './tracing.js';

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

  it('names and describes the upstream span by lane, and links only valid caller spans', () => {
    exporter.reset();
    const caller = trace.getTracer('test').startSpan('caller');
    const invalid = { traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 };
    const single = startUpstreamSpan('app9', 'single', 'PUT', [caller.spanContext(), undefined, invalid]);
    endUpstreamSpan(single.span, 200);
    const batch = startUpstreamSpan('app9', 'batch', 'GET', []);
    endUpstreamSpan(batch.span, 201);
    caller.end();
    const [s1, s2] = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    expect(s1?.name).toBe('PUT single');
    expect(s1?.instrumentationScope.name).toBe('batch-proxy');
    expect(s1?.attributes).toEqual({
      'http.request.method': 'PUT',
      'batch_proxy.app_id': 'app9',
      'batch_proxy.lane': 'single',
      'batch_proxy.batch.size': 3,
      'http.response.status_code': 200,
    });
    expect(s1?.links.map((l) => l.context.spanId)).toEqual([caller.spanContext().spanId]);
    expect(s1?.status.code).toBe(SpanStatusCode.UNSET);
    expect(s2?.name).toBe('POST batch');
    expect(s2?.attributes['http.request.method']).toBe('POST');
    expect(s2?.attributes['batch_proxy.lane']).toBe('batch');
    expect(single.headers.traceparent).toContain(s1?.spanContext().spanId);
  });

  it('marks 5xx, 429 and failed calls as errors, other answers not', () => {
    exporter.reset();
    const outcomes: Array<number | Error> = [499, 500, 429, 404, 502, 428, 430, new Error('socket hang up')];
    for (const outcome of outcomes)
      endUpstreamSpan(startUpstreamSpan('a', 'batch', 'POST', []).span, outcome);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.status)).toEqual([
      { code: SpanStatusCode.UNSET },
      { code: SpanStatusCode.ERROR },
      { code: SpanStatusCode.ERROR },
      { code: SpanStatusCode.UNSET },
      { code: SpanStatusCode.ERROR },
      { code: SpanStatusCode.UNSET },
      { code: SpanStatusCode.UNSET },
      { code: SpanStatusCode.ERROR, message: 'socket hang up' },
    ]);
    expect(spans.map((s) => s.attributes['http.response.status_code'])).toEqual([
      499,
      500,
      429,
      404,
      502,
      428,
      430,
      undefined,
    ]);
  });
});
