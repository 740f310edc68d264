// SPEC §8, one test per row (and per malformed-answer variant), against the real proxy process and
// the fake upstream's fault plan: every affected caller gets the answer the table promises, and no
// POST/PATCH is ever executed twice by the proxy (checked in the fake's `executed` log).

import { request } from 'node:http';
import { Readable } from 'node:stream';
import { Client } from 'undici';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Fault, signAppToken, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { useProxy } from '../harness/use.js';

const APPS = { app1: 'sk_fail_app1', app2: 'sk_fail_app2', app3: 'sk_fail_app3' };
type AppId = keyof typeof APPS;
const AUTH: Record<AppId, string> = {
  app1: `Bearer ${APPS.app1}`,
  app2: `Bearer ${APPS.app2}`,
  app3: `Bearer ${APPS.app3}`,
};
/** The main proxy's upstream timeout; the timeout row delays the answer well past it. */
const UPSTREAM_TIMEOUT_MS = 400;
const MAX_ATTEMPTS = 3;
const BODY_LIMIT = 4096;

const SLOW_WINDOW_MS = 1500;
const TIGHT_MAX_WAIT_MS = 500;

/** Short window, short upstream timeout, small body limit: most rows. */
const { proxy: main, upstream } = useProxy(
  {
    LOG_LEVEL: 'warn',
    // Long enough that calls fired together always share one batch call.
    BATCH_WINDOW_MS: '100',
    UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    UPSTREAM_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
  },
  { upstream: { apps: APPS, limits: { batch: { ratePerSec: 1, burst: 500 } } }, exitCode: 0 },
);
/** A long window (ops stay queued) and a tiny queue: caller disconnect and queue bound. */
const { proxy: slow } = useProxy(
  () => ({
    UPSTREAM_URL: upstream.url,
    LOG_LEVEL: 'warn',
    BATCH_WINDOW_MS: String(SLOW_WINDOW_MS),
    QUEUE_MAX_OPS: '3',
  }),
  { exitCode: 0 },
);
/** One batch call per second, burst 1, one op per batch, 500 ms deadline: deadline rows. */
const { proxy: tight } = useProxy(
  () => ({
    UPSTREAM_URL: upstream.url,
    LOG_LEVEL: 'warn',
    BATCH_WINDOW_MS: '5',
    BATCH_RATE_PER_SEC: '1',
    BATCH_BURST: '1',
    BATCH_MAX_OPS: '1',
    MAX_WAIT_MS: String(TIGHT_MAX_WAIT_MS),
  }),
  { exitCode: 0 },
);

beforeEach(() => {
  upstream.reset();
});

// ---- helpers -----------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
  /** From sending to the end of the answer. */
  ms: number;
}

interface CallOptions {
  app?: AppId;
  auth?: string;
  body?: unknown;
  /** Sent as is (with a JSON content type) instead of JSON.stringify(body). */
  rawBody?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function call(proxy: ProxyProcess, method: string, path: string, o: CallOptions = {}): Promise<Reply> {
  const app = o.app ?? 'app1';
  const hasBody = o.body !== undefined || o.rawBody !== undefined;
  const started = performance.now();
  const res = await fetch(`${proxy.url}/v1/${app}${path}`, {
    method,
    headers: {
      authorization: o.auth ?? AUTH[app],
      ...(hasBody ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    },
    ...(hasBody ? { body: o.rawBody ?? JSON.stringify(o.body) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body, ms: performance.now() - started };
}

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** node:http, one fresh connection, the request target exactly as given (fetch would normalise it). */
function rawCall(
  base: string,
  method: string,
  target: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<RawReply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path: target, headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The fake's own API, bypassing the proxy: seeding and reading back. */
async function direct(app: AppId, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${upstream.url}/v1/${app}${path}`, {
    method,
    headers: {
      authorization: AUTH[app],
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(res.status).toBe(200);
  return res.json();
}

/** Waits for a condition on state we can observe (the fake, /metrics, /readyz); bounded. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function queuedOps(proxy: ProxyProcess, app: AppId): Promise<number> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const m = new RegExp(`^batch_proxy_queued_ops\\{app="${app}"[^}]*\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function readyStatus(proxy: ProxyProcess): Promise<number> {
  const res = await fetch(`${proxy.adminUrl}/readyz`);
  await res.arrayBuffer();
  return res.status;
}

/** A proxy-generated error: JSON `{"error": {"code", "message", "requestId"}}` matching x-request-id. */
function expectProxyError(r: Reply, status: number, code: string | RegExp): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = r.body as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
  expect(body?.error, r.text).toBeDefined();
  expect(body.error?.code).toMatch(code);
  expect(typeof body.error?.message === 'string' && body.error.message.length > 0).toBe(true);
  expect(body.error?.requestId).toBe(r.headers.get('x-request-id'));
}

function executedCount(method: string, path: string, app: AppId = 'app1'): number {
  return upstream.executed.filter((e) => e.appId === app && e.method === method && e.path === path).length;
}

function upstreamCalls(): number {
  return upstream.stats.batchCalls + upstream.stats.singleCalls;
}

// ---- the mixed batch: one op of each method, distinct resources, so they share one batch call ----

type Label = 'get' | 'put' | 'delete' | 'post' | 'patch';
const LABELS: Label[] = ['get', 'put', 'delete', 'post', 'patch'];

interface MixedOp {
  method: string;
  path: string;
  body?: unknown;
}

function mixedOps(p: string): Record<Label, MixedOp> {
  return {
    get: { method: 'GET', path: `/users/${p}-reader` },
    put: { method: 'PUT', path: `/users/${p}-writer`, body: { name: 'writer', custom: { tag: p } } },
    delete: { method: 'DELETE', path: `/users/${p}-gone` },
    post: {
      method: 'POST',
      path: `/conversations/${p}-c/messages`,
      body: [{ text: `${p}-text`, type: 'SystemMessage' }],
    },
    // The fake has no PATCH route: executed, it answers 404 with the upstream's route string.
    patch: { method: 'PATCH', path: `/users/${p}-patched`, body: { name: 'patched' } },
  };
}

/** Seeds what the mixed ops read and write, directly at the fake; returns the ops. */
async function seedMixed(p: string, app: AppId = 'app1'): Promise<Record<Label, MixedOp>> {
  await direct(app, 'PUT', `/users/${p}-reader`, { name: 'reader', custom: { tag: p } });
  await direct(app, 'PUT', `/users/${p}-gone`, { name: 'gone' });
  await direct(app, 'PUT', `/conversations/${p}-c`, { subject: p });
  upstream.executed.length = 0;
  return mixedOps(p);
}

async function fireMixed(ops: Record<Label, MixedOp>, app: AppId = 'app1'): Promise<Record<Label, Reply>> {
  const replies = await Promise.all(
    LABELS.map((label) => {
      const op = ops[label];
      return call(main, op.method, op.path, {
        app,
        ...(op.body === undefined ? {} : { body: op.body }),
        headers: { 'x-request-id': `${label}-${Math.random().toString(36).slice(2)}` },
      });
    }),
  );
  return Object.fromEntries(LABELS.map((l, i) => [l, replies[i]])) as Record<Label, Reply>;
}

/** The answer the upstream gives each mixed op when nothing goes wrong. */
function expectOwnResult(label: Label, r: Reply, p: string): void {
  switch (label) {
    case 'get':
      expect(r.status, r.text).toBe(200);
      expect(r.body).toMatchObject({ id: `${p}-reader`, custom: { tag: p } });
      break;
    case 'put':
    case 'delete':
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual({});
      break;
    case 'post':
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual([{ id: expect.stringMatching(/^msg_/) }]);
      break;
    case 'patch':
      expect(r.status, r.text).toBe(404);
      expect(r.body).toBe(`Could not find route PATCH /users/${p}-patched`);
      break;
  }
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
}

/** The label of the op that carried `seq` in the fake's batch call `callId`. */
function labelOfSeq(ops: Record<Label, MixedOp>, callId: number, seq: number): Label {
  const e = upstream.executed.find((x) => x.via === 'batch' && x.callId === callId && x.seq === seq);
  expect(e, `no op with seq ${seq} in call ${callId}`).toBeDefined();
  const label = LABELS.find((l) => ops[l].method === e?.method && ops[l].path === e?.path);
  expect(label).toBeDefined();
  return label as Label;
}

function firstBatchCallId(): number {
  const e = upstream.executed.find((x) => x.via === 'batch');
  expect(e).toBeDefined();
  return e?.callId ?? -1;
}

// ---- §8 rows -----------------------------------------------------------------------------------

describe('batch call answers 429', () => {
  // After a 429 the proxy rightly believes the app's upstream bucket is empty and paces it from
  // there on; these rows use their own apps so the other rows start with a full bucket.
  it('re-queues the ops and answers every caller its own result after the Retry-After pause', async () => {
    const ops = await seedMixed('r429', 'app2');
    upstream.faults.queue.push({ status: 429, retryAfterSec: 1 });
    const replies = await fireMixed(ops, 'app2');
    for (const label of LABELS) expectOwnResult(label, replies[label], 'r429');
    // Paced: nothing was retried before the upstream's Retry-After had passed.
    for (const label of LABELS) expect(replies[label].ms).toBeGreaterThanOrEqual(950);
    // A 429 executes nothing, so each op ran exactly once: in the retry.
    for (const label of LABELS) expect(executedCount(ops[label].method, ops[label].path, 'app2')).toBe(1);
    expect(upstream.stats.batchCalls).toBe(2);
    expect(upstream.stats.rejected429.batch).toBe(0);
  });

  it('re-queues after a 429 without Retry-After (default back-off) and still answers each caller', async () => {
    const ops = await seedMixed('r429d', 'app3');
    upstream.faults.queue.push({ status: 429 });
    const replies = await fireMixed(ops, 'app3');
    for (const label of LABELS) expectOwnResult(label, replies[label], 'r429d');
    for (const label of LABELS) expect(executedCount(ops[label].method, ops[label].path, 'app3')).toBe(1);
    expect(upstream.stats.batchCalls).toBe(2);
    expect(upstream.stats.rejected429.batch).toBe(0);
  });

  it('answers 503 with Retry-After once the deadline passes while the upstream keeps answering 429', async () => {
    upstream.faults.always = { status: 429, retryAfterSec: 1, appId: 'app2' };
    const r = await call(tight, 'POST', '/conversations/c429/messages', {
      app: 'app2',
      body: [{ text: 'never', type: 'SystemMessage' }],
    });
    expectProxyError(r, 503, 'PROXY_DEADLINE_EXCEEDED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(r.ms).toBeLessThan(TIGHT_MAX_WAIT_MS + 1000);
    expect(upstream.executed).toHaveLength(0);
  });
});

describe('batch call 5xx, reset or timeout', () => {
  /** GET/PUT/DELETE retried and answered with their result; POST/PATCH answered `status` with `code`. */
  async function expectRetriedOrRefused(
    p: string,
    fault: Fault,
    refused: { status: number; code: string },
    executedBeforeAnswer: boolean,
  ): Promise<void> {
    const ops = await seedMixed(p);
    upstream.faults.queue.push(fault);
    const replies = await fireMixed(ops);
    for (const label of ['get', 'put', 'delete'] as const) expectOwnResult(label, replies[label], p);
    for (const label of ['post', 'patch'] as const) {
      expectProxyError(replies[label], refused.status, refused.code);
    }
    // Never executed twice by the proxy: once if the failed call ran it, else not at all.
    const expected = executedBeforeAnswer ? 1 : 0;
    expect(executedCount('POST', ops.post.path)).toBe(expected);
    expect(executedCount('PATCH', ops.patch.path)).toBe(expected);
    // The idempotent ops were sent again without the POST/PATCH, in halves of the failed batch of five
    // (SPEC §8d: which op failed it is unknown): two calls of at most two.
    for (const label of ['get', 'put', 'delete'] as const) {
      expect(executedCount(ops[label].method, ops[label].path)).toBe(executedBeforeAnswer ? 2 : 1);
    }
    expect(upstream.stats.batchCalls).toBe(3);
    expect(upstream.stats.batchSizes.slice(-2).sort()).toEqual([1, 2]);
  }

  it('retries GET/PUT/DELETE and answers POST/PATCH 502 when the batch call answers 503', async () => {
    await expectRetriedOrRefused(
      's503',
      { status: 503 },
      { status: 502, code: 'PROXY_UPSTREAM_UNAVAILABLE' },
      false,
    );
  });

  it('answers POST/PATCH 502 without executing them again when a 500 comes after execution', async () => {
    await expectRetriedOrRefused(
      's500x',
      { status: 500, afterExecute: true },
      { status: 502, code: 'PROXY_UPSTREAM_UNAVAILABLE' },
      true,
    );
  });

  it('retries GET/PUT/DELETE and answers POST/PATCH 502 when the connection resets before execution', async () => {
    await expectRetriedOrRefused(
      'rstb',
      { reset: 'before-execute' },
      { status: 502, code: 'PROXY_UPSTREAM_UNAVAILABLE' },
      false,
    );
  });

  it('answers POST/PATCH 502 and never re-sends them when the connection resets after execution', async () => {
    await expectRetriedOrRefused(
      'rsta',
      { reset: 'after-execute' },
      { status: 502, code: 'PROXY_UPSTREAM_UNAVAILABLE' },
      true,
    );
  });

  it('treats a truncated batch answer like a reset: idempotent ops retried, POST/PATCH 502', async () => {
    await expectRetriedOrRefused(
      'trunc',
      { truncateBody: true },
      { status: 502, code: 'PROXY_UPSTREAM_UNAVAILABLE' },
      true,
    );
  });

  it('answers POST/PATCH 504 after UPSTREAM_TIMEOUT_MS and retries GET/PUT/DELETE', async () => {
    await expectRetriedOrRefused(
      'tmo',
      { delayMs: UPSTREAM_TIMEOUT_MS * 3 },
      { status: 504, code: 'PROXY_UPSTREAM_TIMEOUT' },
      true,
    );
  });

  it('stops retrying idempotent ops after UPSTREAM_MAX_ATTEMPTS calls and answers 502', async () => {
    await direct('app1', 'PUT', '/users/budget-reader', { name: 'r' });
    upstream.executed.length = 0;
    upstream.faults.always = { status: 503 };
    // A credential of its own (an app token): the breaker this opens is its group's alone (SPEC §8d).
    const auth = `Bearer ${signAppToken('app1', APPS.app1)}`;
    const [get, put] = await Promise.all([
      call(main, 'GET', '/users/budget-reader', { auth }),
      call(main, 'PUT', '/users/budget-writer', { auth, body: { name: 'w' } }),
    ]);
    // The shared call failed, so each op went again alone (bisection refunds that first attempt),
    // then spent its MAX_ATTEMPTS; the fifth failure in a row opens the group's breaker, which may
    // answer the last one 503 before its last attempt.
    for (const r of [get, put])
      expectProxyError(r, r.status === 503 ? 503 : 502, /^PROXY_(UPSTREAM_UNAVAILABLE|CIRCUIT_OPEN)$/);
    expect(get.status === 502 || put.status === 502).toBe(true);
    expect(upstream.stats.batchCalls).toBeGreaterThanOrEqual(1 + MAX_ATTEMPTS);
    expect(upstream.stats.batchCalls).toBeLessThanOrEqual(1 + 2 * MAX_ATTEMPTS);
    expect(upstream.executed).toHaveLength(0);
    // The app's other credential is served meanwhile.
    upstream.faults.always = undefined;
    const other = await call(main, 'GET', '/users/budget-reader');
    expect(other.status, other.text).toBe(200);
  });
});

describe('batch call 401/403', () => {
  it('answers each caller of a group with a bad credential the upstream’s 401 and body', async () => {
    const auth = 'Bearer not-the-key';
    const replies = await Promise.all([
      call(main, 'GET', '/users/a401', { auth }),
      call(main, 'PUT', '/users/b401', { auth, body: { name: 'b' } }),
      call(main, 'POST', '/conversations/c401/messages', {
        auth,
        body: [{ text: 'x', type: 'SystemMessage' }],
      }),
    ]);
    for (const r of replies) {
      expect(r.status, r.text).toBe(401);
      expect(r.body).toEqual({
        errorCode: 'UNAUTHORIZED',
        message: 'missing or invalid Authorization token',
      });
    }
    expect(upstream.stats.batchCalls).toBe(1);
    expect(upstream.stats.unauthorized).toBe(1);
    expect(upstream.executed).toHaveLength(0);
  });

  it('answers each caller the upstream’s 403 and its body, without retrying', async () => {
    const ops = await seedMixed('f403');
    const body = { errorCode: 'FORBIDDEN', message: 'this key may not do that' };
    upstream.faults.queue.push({ status: 403, body });
    const replies = await fireMixed(ops);
    for (const label of LABELS) {
      expect(replies[label].status, replies[label].text).toBe(403);
      expect(replies[label].body).toEqual(body);
    }
    expect(upstream.stats.batchCalls).toBe(1);
    expect(upstream.executed).toHaveLength(0);
  });
});

describe('malformed batch answers', () => {
  it('answers every op 502 when the batch answer is not JSON, and retries nothing', async () => {
    const ops = await seedMixed('nojs');
    upstream.faults.queue.push({ notJson: true });
    const replies = await fireMixed(ops);
    for (const label of LABELS) expectProxyError(replies[label], 502, 'PROXY_UPSTREAM_BAD_RESPONSE');
    expect(upstream.stats.batchCalls).toBe(1);
    expect(executedCount('POST', ops.post.path)).toBe(1);
  });

  it('answers every op 502 when the batch answer is JSON but not an array', async () => {
    const ops = await seedMixed('noarr');
    upstream.faults.queue.push({ notArray: true });
    const replies = await fireMixed(ops);
    for (const label of LABELS) expectProxyError(replies[label], 502, 'PROXY_UPSTREAM_BAD_RESPONSE');
    expect(upstream.stats.batchCalls).toBe(1);
    expect(executedCount('POST', ops.post.path)).toBe(1);
  });

  it('answers 502 only for the op whose result is missing; the others get their own result', async () => {
    const ops = await seedMixed('miss');
    upstream.faults.queue.push({ dropResultSeq: [0] });
    const replies = await fireMixed(ops);
    const missing = labelOfSeq(ops, firstBatchCallId(), 0);
    for (const label of LABELS) {
      if (label === missing) expectProxyError(replies[label], 502, 'PROXY_UPSTREAM_BAD_RESPONSE');
      else expectOwnResult(label, replies[label], 'miss');
    }
    expect(upstream.stats.batchCalls).toBe(1);
  });

  it('answers 502 only for the op whose result comes twice; the others get their own result', async () => {
    const ops = await seedMixed('dup');
    upstream.faults.queue.push({ duplicateResultSeq: [1] });
    const replies = await fireMixed(ops);
    const doubled = labelOfSeq(ops, firstBatchCallId(), 1);
    for (const label of LABELS) {
      if (label === doubled) expectProxyError(replies[label], 502, 'PROXY_UPSTREAM_BAD_RESPONSE');
      else expectOwnResult(label, replies[label], 'dup');
    }
    expect(upstream.stats.batchCalls).toBe(1);
  });

  it('ignores a result for a sequence number that was never sent', async () => {
    const ops = await seedMixed('unk');
    upstream.faults.queue.push({ unknownResultSeq: true });
    const replies = await fireMixed(ops);
    for (const label of LABELS) expectOwnResult(label, replies[label], 'unk');
    expect(upstream.stats.batchCalls).toBe(1);
  });

  it('answers 502 only for the op whose result carries a bad status', async () => {
    const ops = await seedMixed('bst');
    upstream.faults.queue.push({ badStatus: [2] });
    const replies = await fireMixed(ops);
    const bad = labelOfSeq(ops, firstBatchCallId(), 2);
    for (const label of LABELS) {
      if (label === bad) expectProxyError(replies[label], 502, 'PROXY_UPSTREAM_BAD_RESPONSE');
      else expectOwnResult(label, replies[label], 'bst');
    }
    expect(upstream.stats.batchCalls).toBe(1);
  });

  it('sends the ops again in smaller batches when the batch call itself answers a 4xx (none of it ran)', async () => {
    // A whole-batch 4xx other than 401/403/429 must not fail every co-batched caller; the
    // members travel again in halves until the op that caused it, if any, is alone and gets it.
    const ops = await seedMixed('s400');
    upstream.faults.queue.push({ status: 400, body: { errorCode: 'INVALID_REQUEST', message: 'huh' } });
    const replies = await fireMixed(ops);
    for (const label of LABELS) expectOwnResult(label, replies[label], 's400');
    // The refused batch of five, then batches of at most two: 2 + 2 + 1.
    expect(upstream.stats.batchCalls).toBe(4);
    expect(upstream.executed).toHaveLength(LABELS.length);
  });
});

describe('caller disconnects before its op is sent', () => {
  it('removes the op and never sends it upstream', async () => {
    await direct('app1', 'PUT', '/conversations/dc-c', { subject: 'dc' });
    upstream.executed.length = 0;
    const abort = new AbortController();
    const victim = call(slow, 'POST', '/conversations/dc-c/messages', {
      body: [{ text: 'must-never-arrive', type: 'SystemMessage' }],
      signal: abort.signal,
    });
    const control = call(slow, 'PUT', '/users/dc-control', { body: { name: 'control' } });
    await until('both ops queued', async () => (await queuedOps(slow, 'app1')) === 2);
    abort.abort();
    await expect(victim).rejects.toThrow(/abort/i);
    await until('the aborted op removed', async () => (await queuedOps(slow, 'app1')) === 1);

    const answered = await control;
    expect(answered.status, answered.text).toBe(200);
    expect(upstream.stats.batchSizes).toEqual([1]);
    expect(upstream.executed.map((e) => `${e.method} ${e.path}`)).toEqual(['PUT /users/dc-control']);
    expect(upstream.executed.some((e) => JSON.stringify(e.body ?? null).includes('must-never-arrive'))).toBe(
      false,
    );
  });

  it('still answers the other callers of a collapsed read when one of them disconnects', async () => {
    await direct('app1', 'PUT', '/users/dc-shared', { name: 'shared', custom: { tag: 'dc-shared' } });
    upstream.executed.length = 0;
    const abort = new AbortController();
    const leaver = call(slow, 'GET', '/users/dc-shared', { signal: abort.signal });
    const stayer = call(slow, 'GET', '/users/dc-shared');
    await until('the read queued', async () => (await queuedOps(slow, 'app1')) === 1);
    abort.abort();
    await expect(leaver).rejects.toThrow(/abort/i);
    const r = await stayer;
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ id: 'dc-shared', custom: { tag: 'dc-shared' } });
    expect(executedCount('GET', '/users/dc-shared')).toBe(1);
  });
});

describe('read collapsing through the real process', () => {
  it('never lets a caller without the key join a valid caller’s identical read', async () => {
    await direct('app1', 'PUT', '/users/rc-private', { name: 'private', custom: { tag: 'rc' } });
    upstream.executed.length = 0;
    // Fired together: both wait in one window, where a credential-blind collapse would join them.
    const [valid, stranger] = await Promise.all([
      call(main, 'GET', '/users/rc-private'),
      call(main, 'GET', '/users/rc-private', { auth: 'Bearer not-the-key' }),
    ]);
    expect(valid.status, valid.text).toBe(200);
    expect(valid.body).toMatchObject({ id: 'rc-private', name: 'private', custom: { tag: 'rc' } });
    expect(stranger.status, stranger.text).toBe(401);
    expect(stranger.text).not.toContain('private');
    // Only the valid caller's read ran; the stranger's call was refused by the upstream as a whole.
    expect(upstream.executed.map((e) => [e.method, e.path, e.credential])).toEqual([
      ['GET', '/users/rc-private', AUTH.app1],
    ]);
    expect(upstream.stats.unauthorized).toBe(1);
  });

  it('does not let a read that arrives after a write join a read from before it', async () => {
    await direct('app1', 'PUT', '/users/rc-moving', { name: 'before' });
    upstream.executed.length = 0;
    const first = call(slow, 'GET', '/users/rc-moving');
    await until('the first read queued', async () => (await queuedOps(slow, 'app1')) === 1);
    const write = call(slow, 'PUT', '/users/rc-moving', { body: { name: 'after' } });
    await until('the write queued', async () => (await queuedOps(slow, 'app1')) === 2);
    const second = call(slow, 'GET', '/users/rc-moving');
    const [r1, w, r2] = await Promise.all([first, write, second]);
    expect(r1.body, r1.text).toMatchObject({ id: 'rc-moving', name: 'before' });
    expect([w.status, w.body]).toEqual([200, {}]);
    expect(r2.body, r2.text).toMatchObject({ id: 'rc-moving', name: 'after' });
    expect(upstream.executed.map((e) => `${e.method} ${e.path}`)).toEqual([
      'GET /users/rc-moving',
      'PUT /users/rc-moving',
      'GET /users/rc-moving',
    ]);
  });
});

describe('SIGTERM', () => {
  it('stops accepting, answers every in-flight and queued call, then exits 0 within the grace period', async () => {
    const grace = 5000;
    const proxy = await startProxyProcess({
      UPSTREAM_URL: upstream.url,
      LOG_LEVEL: 'warn',
      BATCH_WINDOW_MS: '1000',
      BATCH_MAX_OPS: '4',
      SHUTDOWN_GRACE_MS: String(grace),
    });
    try {
      await direct('app1', 'PUT', '/conversations/term-c', { subject: 'term' });
      upstream.executed.length = 0;
      const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
        proxy.child.once('exit', (code) => resolve({ code, at: performance.now() })),
      );
      // In flight: a full batch (4 ops leave at once), held 1.5 s by the upstream.
      upstream.faults.queue.push({ delayMs: 1500 });
      const inflight = [0, 1, 2, 3].map((i) =>
        call(proxy, 'PUT', `/users/term-a${i}`, { body: { name: `a${i}`, custom: { n: String(i) } } }),
      );
      await until('the first batch in flight', () => upstream.executed.length === 4);
      // Queued: two ops waiting for their 1 s window.
      const queued = [
        call(proxy, 'PUT', '/users/term-b', { body: { name: 'b' } }),
        call(proxy, 'POST', '/conversations/term-c/messages', {
          body: [{ text: 'term-b-msg', type: 'SystemMessage' }],
        }),
      ];
      await until('two ops queued', async () => (await queuedOps(proxy, 'app1')) === 2);

      const t0 = performance.now();
      proxy.child.kill('SIGTERM');
      await until('/readyz 503', async () => (await readyStatus(proxy)) === 503, 1000);

      const late = await rawCall(proxy.url, 'GET', '/v1/app1/users/term-late', { authorization: AUTH.app1 });
      expect(late.status).toBe(503);
      expect(Number(late.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(late.headers.connection).toBe('close');
      expect(JSON.parse(late.text)).toMatchObject({ error: { code: 'PROXY_DRAINING' } });

      const answers = await Promise.all([...inflight, ...queued]);
      for (const r of answers) expect(r.status, r.text).toBe(200);
      expect(answers[5]?.body).toEqual([{ id: expect.stringMatching(/^msg_/) }]);

      const { code, at } = await exited;
      expect(code).toBe(0);
      expect(at - t0).toBeLessThan(grace);
      expect(executedCount('GET', '/users/term-late')).toBe(0);
      for (let i = 0; i < 4; i++) expect(executedCount('PUT', `/users/term-a${i}`)).toBe(1);
      expect(executedCount('PUT', '/users/term-b')).toBe(1);
      expect(executedCount('POST', '/conversations/term-c/messages')).toBe(1);
    } finally {
      await proxy.stop('SIGKILL');
    }
  });

  it('answers ops still waiting for a rate-limit token 503 at the end of the grace period, then exits 0', async () => {
    const grace = 800;
    const proxy = await startProxyProcess({
      UPSTREAM_URL: upstream.url,
      LOG_LEVEL: 'warn',
      BATCH_WINDOW_MS: '5',
      BATCH_RATE_PER_SEC: '0.2',
      BATCH_BURST: '1',
      BATCH_MAX_OPS: '1',
      SHUTDOWN_GRACE_MS: String(grace),
    });
    try {
      const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
        proxy.child.once('exit', (code) => resolve({ code, at: performance.now() })),
      );
      const first = await call(proxy, 'PUT', '/users/grace-1', { body: { name: '1' } });
      expect(first.status).toBe(200);
      // The next token is 5 s away.
      const waiting = call(proxy, 'PUT', '/users/grace-2', { body: { name: '2' } });
      await until('the op queued', async () => (await queuedOps(proxy, 'app1')) === 1);
      const t0 = performance.now();
      proxy.child.kill('SIGTERM');
      const r = await waiting;
      expectProxyError(r, 503, 'PROXY_DRAINING');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const { code, at } = await exited;
      expect(code).toBe(0);
      expect(at - t0).toBeLessThan(grace + 1000);
      expect(executedCount('PUT', '/users/grace-2')).toBe(0);
    } finally {
      await proxy.stop('SIGKILL');
    }
  });

  it('exits within the grace period even while an upstream call hangs, answering its caller', async () => {
    const grace = 1000;
    const hung = await startFakeUpstream({ apps: APPS });
    const proxy = await startProxyProcess({
      UPSTREAM_URL: hung.url,
      LOG_LEVEL: 'warn',
      BATCH_WINDOW_MS: '5',
      UPSTREAM_TIMEOUT_MS: '30000',
      SHUTDOWN_GRACE_MS: String(grace),
    });
    try {
      const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
        proxy.child.once('exit', (code) => resolve({ code, at: performance.now() })),
      );
      hung.faults.always = { delayMs: 20_000 };
      const pending = call(proxy, 'PUT', '/users/hang', { body: { name: 'hang' } }).catch(
        (error: unknown) => error,
      );
      await until('the call in flight', () => hung.executed.length === 1);
      const t0 = performance.now();
      proxy.child.kill('SIGTERM');
      const bound = new Promise<'still running'>((resolve) =>
        setTimeout(resolve, grace + 3000, 'still running'),
      );
      const outcome = await Promise.race([exited, bound]);
      expect(outcome, `the proxy did not exit within SHUTDOWN_GRACE_MS (${grace} ms) + 3 s`).not.toBe(
        'still running',
      );
      if (outcome !== 'still running') {
        expect(outcome.code).toBe(0);
        expect(outcome.at - t0).toBeLessThan(grace + 1000);
      }
      // Its caller got an answer (a JSON 5xx), not a dropped connection.
      const r = await pending;
      expect(r).not.toBeInstanceOf(Error);
      const reply = r as Reply;
      expect(reply.status).toBeGreaterThanOrEqual(500);
      expect(reply.body).toMatchObject({ error: { code: expect.stringMatching(/^PROXY_/) } });
    } finally {
      await proxy.stop('SIGKILL');
      await hung.close();
    }
  });
});

describe('bad input', () => {
  it('refuses malformed JSON with 400 and never calls the upstream', async () => {
    const r = await call(main, 'PUT', '/users/badjson', { rawBody: '{"name": ' });
    expectProxyError(r, 400, 'PROXY_MALFORMED_JSON');
    // A valid call afterwards goes alone: the refused one was never queued.
    const ok = await call(main, 'PUT', '/users/goodjson', { body: { name: 'ok' } });
    expect(ok.status).toBe(200);
    expect(upstream.stats.batchSizes).toEqual([1]);
    expect(upstream.executed.map((e) => e.path)).toEqual(['/users/goodjson']);
  });

  it('refuses a body with invalid UTF-8 and a JSON content type with 400, no upstream call', async () => {
    const r = await rawCall(
      main.url,
      'PUT',
      '/v1/app1/users/badutf8',
      { authorization: AUTH.app1, 'content-type': 'application/json' },
      Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    );
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'PROXY_MALFORMED_JSON' } });
    expect(upstreamCalls()).toBe(0);
  });

  it('refuses a body over BODY_LIMIT_BYTES with 413 (declared length), no upstream call', async () => {
    const r = await call(main, 'PUT', '/users/big', { body: { blob: 'x'.repeat(BODY_LIMIT) } });
    expectProxyError(r, 413, 'PROXY_BODY_TOO_LARGE');
    expect(upstreamCalls()).toBe(0);
  });

  it('refuses a chunked body that grows over BODY_LIMIT_BYTES with 413, no upstream call', async () => {
    // Its own connection: what a 413 leaves behind on it is the business of the tests below.
    const client = new Client(main.url, { headersTimeout: 3000, bodyTimeout: 3000 });
    try {
      const piece = Buffer.from('x'.repeat(1024));
      const res = await client.request({
        method: 'PUT',
        path: '/v1/app1/users/bigchunked',
        headers: { authorization: AUTH.app1, 'content-type': 'application/json' },
        body: Readable.from([
          Buffer.from('{"blob":"'),
          ...Array.from({ length: 8 }, () => piece),
          Buffer.from('"}'),
        ]),
      });
      const text = await res.body.text();
      expect(res.statusCode, text).toBe(413);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'PROXY_BODY_TOO_LARGE' } });
    } finally {
      await client.destroy();
    }
    expect(upstreamCalls()).toBe(0);
  });

  /** Sends an oversized upload, then a normal call on the same keep-alive connection. */
  async function uploadThenReuse(
    big: { chunked: boolean; headers?: Record<string, string>; auth?: string },
    expectedStatus: number,
  ): Promise<void> {
    const client = new Client(main.url, { headersTimeout: 3000, bodyTimeout: 3000 });
    const step = <T>(name: string, p: Promise<T>): Promise<T> =>
      p.catch((error: unknown) => {
        throw new Error(`${name}: ${String(error)}`);
      });
    try {
      const blob = Buffer.from(`{"blob":"${'x'.repeat(2 * 1024 * 1024)}"}`);
      const first = await step(
        'the upload',
        client.request({
          method: 'PUT',
          path: '/v1/app1/users/upload-big',
          headers: {
            authorization: big.auth ?? AUTH.app1,
            'content-type': 'application/json',
            ...big.headers,
          },
          body: big.chunked ? Readable.from([blob]) : blob,
        }),
      );
      await step('the upload’s answer', first.body.text());
      expect(first.statusCode).toBe(expectedStatus);
      // If the proxy meant to drop the connection, it had to say `Connection: close` (then undici
      // opens a new one); dropping it silently makes this reuse fail with ECONNRESET.
      const next = await step(
        'the next call on the same connection',
        client.request({
          method: 'PUT',
          path: '/v1/app1/users/after-upload',
          headers: { authorization: AUTH.app1, 'content-type': 'application/json' },
          body: '{"name":"after"}',
        }),
      );
      expect(next.statusCode, await next.body.text()).toBe(200);
    } finally {
      await client.destroy();
    }
  }

  it('keeps the connection usable after a 413 for an oversized declared-length body', async () => {
    await uploadThenReuse({ chunked: false }, 413);
  });

  it('keeps the connection usable after a 413 for an oversized chunked body', async () => {
    await uploadThenReuse({ chunked: true }, 413);
  });

  it('keeps the connection usable when the upstream answers a pass-through upload early', async () => {
    // A bad key: the upstream would answer 401 without waiting for the body, but the body passes
    // BODY_LIMIT_BYTES on its first chunk, so the proxy refuses it (413) before that (SPEC §8c).
    await uploadThenReuse({ chunked: true, auth: 'Bearer wrong', headers: { 'x-batch-bypass': '1' } }, 413);
  });

  const traversals = [
    '/v1/app1/../app2/users/x',
    '/v1/app1/%2e%2e/app2/users/x',
    '/v1/app1/%2E%2E/app2/users/x',
    '/v1/app1/.%2e/app2/users/x',
    '/v1/app1/users/../../app2/users/x',
    '/v1/app1/./users/x',
    '/v1/app1%2F..%2Fapp2/users/x',
    '/v1/app1/users%2F..%2F..%2Fapp2%2Fusers/x',
    '/v1/app1/users/%2e%2e%2f%2e%2e%2fapp2/x',
    '/v1/app1/users/..%5c..%5capp2/x',
    // Raw backslashes: a WHATWG-URL upstream reads them as slashes (`\..\` climbs).
    '/v1/app1/users/x\\..\\..\\app2\\users\\x',
    '/v1/app1\\..\\app2/users/x',
    '/v1/app1/users/%zz',
  ];
  for (const target of traversals) {
    it(`refuses the request target ${target} with 400 and no upstream call`, async () => {
      for (const headers of [{}, { 'x-batch-bypass': '1' }]) {
        const r = await rawCall(main.url, 'GET', target, { authorization: AUTH.app1, ...headers });
        expect(r.status, r.text).toBe(400);
        expect(r.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(r.text)).toMatchObject({
          error: { code: 'PROXY_BAD_REQUEST', message: expect.any(String), requestId: expect.any(String) },
        });
      }
      expect(upstreamCalls()).toBe(0);
    });
  }
});

describe('deadline and queue bound', () => {
  it('answers 503 with Retry-After to ops that cannot get a batch token before MAX_WAIT_MS', async () => {
    // One op per batch, one batch per second, burst 1: the first op takes the token, the others
    // would wait about a second, longer than their 500 ms deadline.
    const replies = await Promise.all(
      [1, 2, 3].map((i) => call(tight, 'PUT', `/users/dl-${i}`, { body: { name: `dl${i}` } })),
    );
    const sent = replies.filter((r) => r.status === 200);
    const shed = replies.filter((r) => r.status !== 200);
    expect(sent).toHaveLength(1);
    expect(shed).toHaveLength(2);
    for (const r of shed) {
      expectProxyError(r, 503, 'PROXY_DEADLINE_EXCEEDED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.ms).toBeLessThan(TIGHT_MAX_WAIT_MS + 1000);
    }
    expect(upstream.executed).toHaveLength(1);
  });

  it('answers the client’s own batch call 503 when no batch token comes before its deadline', async () => {
    const batch = (n: number) =>
      call(tight, 'POST', '/batch', { app: 'app3', body: [[1, 'PUT', `/users/cb-${n}`, { name: 'cb' }]] });
    const first = await batch(1);
    expect(first.status, first.text).toBe(200);
    const second = await batch(2);
    expectProxyError(second, 503, 'PROXY_DEADLINE_EXCEEDED');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(upstream.stats.batchCalls).toBe(1);
    expect(executedCount('PUT', '/users/cb-2', 'app3')).toBe(0);
  });

  it('answers 429 with Retry-After at once when the app’s queue holds QUEUE_MAX_OPS ops', async () => {
    const accepted = [1, 2, 3].map((i) => call(slow, 'GET', `/users/q-${i}`, { app: 'app2' }));
    await until('three ops queued', async () => (await queuedOps(slow, 'app2')) === 3);
    const refused = await Promise.all(
      [4, 5].map((i) => call(slow, 'PUT', `/users/q-${i}`, { app: 'app2', body: { name: 'q' } })),
    );
    for (const r of refused) {
      expectProxyError(r, 429, 'PROXY_QUEUE_FULL');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // At once: well before the queued ops' window ends.
      expect(r.ms).toBeLessThan(SLOW_WINDOW_MS / 3);
    }
    for (const r of await Promise.all(accepted)) expect(r.status, r.text).toBe(404);
    expect(upstream.executed.map((e) => e.path).sort()).toEqual(['/users/q-1', '/users/q-2', '/users/q-3']);
  });
});

describe('credentials in a failing batch', () => {
  it('never retries one group’s ops under another group’s credential', async () => {
    const token = signAppToken('app1', APPS.app1, { expiresInSec: 600, claims: { who: 'other' } });
    upstream.faults.queue.push({ status: 503 }, { status: 503 });
    const [a, b] = await Promise.all([
      call(main, 'PUT', '/users/cred-a', { body: { name: 'a' } }),
      call(main, 'PUT', '/users/cred-b', { auth: `Bearer ${token}`, body: { name: 'b' } }),
    ]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(upstream.executed.find((e) => e.path === '/users/cred-a')?.credential).toBe(AUTH.app1);
    expect(upstream.executed.find((e) => e.path === '/users/cred-b')?.credential).toBe(`Bearer ${token}`);
  });
});
