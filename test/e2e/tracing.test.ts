// Traces (SPEC §10) from the real process to an OTLP/HTTP receiver on loopback: one server span per
// caller, one client span per upstream batch call with a link to every member caller's span.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useProxy } from '../harness/use.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  links?: Array<{ traceId: string; spanId: string }>;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

const SERVER = 2;
const CLIENT = 3;
const SECRET = 'sk_trace_secret';
let receiver: Server;
const spans: OtlpSpan[] = [];
let onSpans: () => void = () => {};

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const data = JSON.parse(body) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of data.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      onSpans();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});

// Registered before useProxy's, so it runs after the proxy has stopped.
afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve));
});

const { proxy } = useProxy(
  () => ({
    LOG_LEVEL: 'warn',
    BATCH_WINDOW_MS: '50',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  }),
  { upstream: { apps: { app1: SECRET } } },
);

/** Resolves once the receiver holds spans matching `check` (each export wakes it), bounded. */
function spansWhere(check: (all: OtlpSpan[]) => boolean, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`spans not exported in time: ${JSON.stringify(spans)}`)),
      timeoutMs,
    );
    onSpans = () => {
      if (check(spans)) {
        clearTimeout(timer);
        resolve();
      }
    };
    onSpans();
  });
}

describe('traces', () => {
  it('links the batch call’s client span to the server span of every caller in it', async () => {
    const traceIds = [
      '0af7651916cd43dd8448eb211c80319c',
      '1af7651916cd43dd8448eb211c80319c',
      '2af7651916cd43dd8448eb211c80319c',
    ];
    const responses = await Promise.all(
      traceIds.map((traceId, i) =>
        fetch(`${proxy.url}/v1/app1/users/t${i}`, {
          headers: { authorization: `Bearer ${SECRET}`, traceparent: `00-${traceId}-b7ad6b7169203331-01` },
        }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual([404, 404, 404]);

    await spansWhere(
      (all) => all.some((s) => s.kind === CLIENT) && all.filter((s) => s.kind === SERVER).length >= 3,
    );
    const servers = spans.filter((s) => s.kind === SERVER);
    // Each caller's server span continues the caller's own trace.
    expect(servers.map((s) => s.traceId).sort()).toEqual([...traceIds].sort());
    const client = spans.find((s) => s.kind === CLIENT);
    expect(client?.links?.map((l) => l.spanId).sort()).toEqual(servers.map((s) => s.spanId).sort());
    // No secret in any span.
    expect(JSON.stringify(spans)).not.toContain(SECRET);
  });
});
