// ACCESS_LOG: each policy logs what it says — every error and shed always, successes all, none, or
// exactly one in ACCESS_LOG_SAMPLE_EVERY — and every line carries the app and, for the proxy's own
// errors, the error code, in pino's line shape.

import { describe, expect, it } from 'vitest';
import { type AccessEntry, type AccessLogPolicy, createAccessLog, routeTemplate } from './access-log.js';

const ok = (n: number): AccessEntry => ({
  requestId: `ok-${n}`,
  appId: 'app1',
  method: 'PUT',
  url: `/v1/app1/users/u${n}?x=1`,
  kind: 'batched',
  status: 200,
  source: 'upstream',
  code: undefined,
  why: undefined,
  ms: 1.234567,
  timing: { queueMs: 2.005, upstreamMs: 0.5, batchSize: 10, lane: 'batch', callId: 7 },
});

const shed = (n: number): AccessEntry => ({
  ...ok(n),
  requestId: `shed-${n}`,
  status: 429,
  source: 'proxy',
  code: 'PROXY_QUEUE_FULL',
  timing: undefined,
});

/** An error the upstream made (its 404, relayed): no proxy code, still an error. */
const upstream404 = (n: number): AccessEntry => ({ ...ok(n), requestId: `404-${n}`, status: 404 });

function logged(policy: AccessLogPolicy, sampleEvery: number, entries: AccessEntry[]) {
  const lines: Array<Record<string, unknown>> = [];
  const log = createAccessLog({
    policy,
    sampleEvery,
    enabled: true,
    write: (line) => {
      expect(line.endsWith('\n')).toBe(true);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
    now: () => 1_700_000_000_000,
  });
  for (const e of entries) log.record(e);
  return lines;
}

const mixed = (): AccessEntry[] => {
  const out: AccessEntry[] = [];
  for (let i = 0; i < 10; i++) out.push(ok(i), shed(i), upstream404(i));
  return out;
};

describe('access log policies', () => {
  it('all: every call', () => {
    expect(logged('all', 100, mixed())).toHaveLength(30);
  });

  it('errors: every error and shed, no success', () => {
    const ids = logged('errors', 1, mixed()).map((l) => l.requestId);
    expect(ids).toHaveLength(20);
    expect(ids.filter((id) => String(id).startsWith('ok-'))).toEqual([]);
  });

  it('sampled: every error and shed, and exactly one success in N (the first of each N)', () => {
    const entries: AccessEntry[] = [];
    for (let i = 0; i < 10; i++) entries.push(ok(i), shed(i));
    const ids = logged('sampled', 4, entries).map((l) => l.requestId);
    expect(ids.filter((id) => String(id).startsWith('ok-'))).toEqual(['ok-0', 'ok-4', 'ok-8']);
    expect(ids.filter((id) => String(id).startsWith('shed-'))).toHaveLength(10);
  });

  it('sampled with N = 1 logs every success', () => {
    expect(logged('sampled', 1, [ok(1), ok(2), ok(3)])).toHaveLength(3);
  });

  it('writes nothing when info lines are off (LOG_LEVEL above info)', () => {
    const lines: string[] = [];
    const log = createAccessLog({
      policy: 'all',
      sampleEvery: 1,
      enabled: false,
      write: (l) => lines.push(l),
    });
    log.record(shed(1));
    expect(lines).toEqual([]);
  });
});

describe('access log line', () => {
  it('keeps pino’s shape and the known fields, the route as a template', () => {
    const [line] = logged('all', 1, [ok(3)]);
    expect(line).toEqual({
      level: 30,
      time: 1_700_000_000_000,
      pid: process.pid,
      hostname: expect.any(String),
      requestId: 'ok-3',
      appId: 'app1',
      method: 'PUT',
      route: '/v1/:appId/users/:id',
      kind: 'batched',
      status: 200,
      source: 'upstream',
      ms: 1.23,
      queueMs: 2.01,
      upstreamMs: 0.5,
      batchSize: 10,
      lane: 'batch',
      batchId: 7,
      msg: 'request',
    });
  });

  it('carries the error code and the app on an error line, and null for a path naming no app', () => {
    const [a, b] = logged('errors', 1, [shed(1), { ...shed(2), appId: undefined, url: '/v2/x' }]);
    expect(a).toMatchObject({ appId: 'app1', code: 'PROXY_QUEUE_FULL', status: 429, source: 'proxy' });
    expect(b).toMatchObject({ appId: null, code: 'PROXY_QUEUE_FULL', route: '/v2/x' });
  });

  it('escapes what callers choose (request id, app id) and names a pass-through header, never its value', () => {
    const hostile = 'x"}\n{"level":60';
    const [line] = logged('all', 1, [
      { ...ok(1), requestId: hostile, appId: hostile, why: { reason: 'header', header: 'cookie' } },
    ]);
    expect(line).toMatchObject({
      requestId: hostile,
      appId: hostile,
      passReason: 'header',
      passHeader: 'cookie',
    });
  });
});

describe('routeTemplate', () => {
  it('replaces app and resource ids and drops the query', () => {
    expect(routeTemplate('/v1/app1/conversations/c9/messages?limit=5')).toBe(
      '/v1/:appId/conversations/:id/messages',
    );
    expect(routeTemplate('/v1/app1/users/u1')).toBe('/v1/:appId/users/:id');
    expect(routeTemplate('/healthz')).toBe('/healthz');
  });
});
