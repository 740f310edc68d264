// A fake upstream for engine tests: an UpstreamTransport that reads batch and single calls in a
// dialect's wire format (TalkJS by default, Graph on request), records every call, waits its latency
// on the test's clock and answers each op — 200 by default, or as the test scripts it.

import type { Clock } from '../batcher/clock.js';
import { realClock } from '../batcher/clock.js';
import type { UpstreamTransport } from '../batcher/dispatch.js';
import type { Lane } from '../batcher/op.js';
import type { UpstreamRequest } from '../dialect/dialect.js';
import { readHttp, readPart, splitParts } from '../dialect/multipart.js';
import type { BufferedResponse } from '../upstream/client.js';

/** One op of a call as the upstream read it off the wire. */
export interface FakeOp {
  /** TalkJS: the op's sequence number (0 for a single call); Graph: the request's id. */
  readonly id: number | string;
  readonly method: string;
  /**
   * TalkJS: the op's path (a single call's without the `/v1/{app}` root and the query); Graph: the
   * request's url, query text included (a single call's without the `/{version}` root).
   */
  readonly path: string;
  /** The decoded payload: TalkJS a GET's query object or a write's body; Graph the request's body. */
  readonly body: unknown;
  /** Graph: the ids this request runs after (a serial chain). */
  readonly dependsOn?: readonly string[];
}

/** One call the upstream received. */
export interface FakeCall {
  /** Its place among the calls, from 0. */
  readonly index: number;
  /** The clock's `now()` when it arrived. */
  readonly at: number;
  readonly lane: Lane;
  /** How many ops it carried (1 for a single call). */
  readonly size: number;
  readonly ops: readonly FakeOp[];
  /** Each op's path, in the order sent. */
  readonly paths: readonly string[];
  readonly authorization: string | undefined;
  readonly signal: AbortSignal | undefined;
  readonly request: UpstreamRequest;
}

/** One op's answer (a single call's whole answer). */
export interface OpReply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  /** Absent: TalkJS none in the batch entry, `{}` as a single call's body; Graph none. */
  readonly body?: unknown;
}

/** A whole call's answer, or the failure the transport throws. */
export type CallAnswer = BufferedResponse | Error;

/** A batch dialect as the upstream speaks it. */
export interface FakeWire {
  isBatch(request: UpstreamRequest): boolean;
  decodeBatch(body: string): FakeOp[];
  decodeSingle(request: UpstreamRequest): FakeOp;
  /** A request answered 424 without running when one it depends on failed (Graph's chains). */
  failedDependency?: OpReply;
  encodeBatch(replies: ReadonlyArray<readonly [FakeOp, OpReply]>): unknown;
  /**
   * The batch answer's headers and body text, for a wire whose body is not the JSON of `encodeBatch`
   * (Google: multipart text whose boundary is in Content-Type).
   */
  encodeAnswer?(replies: ReadonlyArray<readonly [FakeOp, OpReply]>): {
    headers: Record<string, string>;
    body: string;
  };
}

/** A batch call's 200 answer on `wire`: headers and body text. */
export function batchAnswerOf(
  wire: FakeWire,
  replies: ReadonlyArray<readonly [FakeOp, OpReply]>,
): { headers: Record<string, string>; body: string } {
  return wire.encodeAnswer?.(replies) ?? { headers: {}, body: JSON.stringify(wire.encodeBatch(replies)) };
}

type TalkjsOp = [number, string, string, unknown?, unknown?];

/** TalkJS: `POST /v1/{app}/batch`, `[[seq, method, path, payload?], …]` → `[[seq, status, body], …]`. */
export const talkjsWire: FakeWire = {
  isBatch: (request) => request.path.endsWith('/batch'),
  decodeBatch: (body) =>
    (JSON.parse(body || '[]') as TalkjsOp[]).map(([id, method, path, payload]) => ({
      id,
      method,
      path,
      body: payload,
    })),
  decodeSingle: (request) => {
    const [target = '', query = ''] = request.path.split('?');
    const body =
      request.method === 'GET'
        ? Object.fromEntries(new URLSearchParams(query))
        : JSON.parse(request.body ?? '{}');
    return { id: 0, method: request.method, path: target.replace(/^\/v1\/[^/]+/, ''), body };
  },
  encodeBatch: (replies) =>
    replies.map(([op, reply]) =>
      reply.body === undefined ? [op.id, reply.status] : [op.id, reply.status, reply.body],
    ),
};

interface GraphRequest {
  id: string;
  method: string;
  url: string;
  body?: unknown;
  dependsOn?: string[];
}

/** Graph: `POST /{version}/$batch`, `{requests: [{id, method, url, body?, dependsOn?}]}` → `{responses}`. */
export const graphWire: FakeWire = {
  isBatch: (request) => request.path.endsWith('/$batch'),
  decodeBatch: (body) =>
    (JSON.parse(body || '{"requests":[]}') as { requests: GraphRequest[] }).requests.map((r) => ({
      id: r.id,
      method: r.method,
      path: r.url,
      body: r.body,
      ...(r.dependsOn ? { dependsOn: r.dependsOn } : {}),
    })),
  decodeSingle: (request) => ({
    id: '0',
    method: request.method,
    path: request.path.replace(/^\/[^/]+/, ''),
    body: request.body === undefined ? undefined : JSON.parse(request.body),
  }),
  failedDependency: { status: 424, body: { error: { code: 'FailedDependency' } } },
  encodeBatch: (replies) => ({ responses: replies.map(([op, reply]) => ({ id: op.id, ...reply })) }),
};

/** The boundary of the fake Google answers. */
const GOOGLE_BOUNDARY = 'batch_fake_answer';

/** One Google part's request line, headers and body; `id` is its Content-ID without brackets. */
function googleOp(raw: string): FakeOp {
  const part = readPart(raw);
  const http = readHttp(part.content);
  const [method = '', target = ''] = http.start.split(' ');
  return {
    id: (part.headers['content-id'] ?? '').replace(/^<|>$/g, ''),
    method,
    // Below `/{api}/{version}`, query included.
    path: target.replace(/^\/[^/?]+\/[^/?]+/, ''),
    body: http.body === '' ? undefined : JSON.parse(http.body),
  };
}

function googlePart(op: FakeOp, reply: OpReply): string {
  const headers = { 'content-type': 'application/json; charset=UTF-8', ...reply.headers };
  const body =
    reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  const fields = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `--${GOOGLE_BOUNDARY}\r\nContent-Type: application/http\r\nContent-ID: <response-${op.id}>\r\n\r\nHTTP/1.1 ${reply.status} Fake\r\n${fields.join('')}\r\n${body}\r\n`;
}

/**
 * Google: `POST /batch/{api}/{version}`, multipart/mixed parts of whole HTTP requests
 * (`Content-ID: <item-N>`) → parts of whole HTTP responses (`<response-item-N>`). A reply's string
 * body goes as it is (with the reply's own content-type), any other as JSON.
 */
export const googleBatchWire: FakeWire = {
  isBatch: (request) => request.path.startsWith('/batch/'),
  // The body's first line is its first delimiter: `--{boundary}`.
  decodeBatch: (body) => {
    const boundary = /^--([^\r\n]+)/.exec(body)?.[1];
    return boundary === undefined ? [] : (splitParts(body, boundary) ?? []).map(googleOp);
  },
  decodeSingle: (request) => ({
    id: '0',
    method: request.method,
    path: request.path.replace(/^\/[^/?]+\/[^/?]+/, ''),
    body: request.body === undefined ? undefined : JSON.parse(request.body),
  }),
  encodeBatch: (replies) =>
    `${replies.map(([op, reply]) => googlePart(op, reply)).join('')}--${GOOGLE_BOUNDARY}--\r\n`,
  encodeAnswer: (replies) => ({
    headers: { 'content-type': `multipart/mixed; boundary=${GOOGLE_BOUNDARY}` },
    body: googleBatchWire.encodeBatch(replies) as string,
  }),
};

interface JsonRpcRequest {
  id?: number | string | null;
  method: string;
  params?: unknown;
}

const rpcOp = (entry: JsonRpcRequest): FakeOp => ({
  id: entry.id ?? '',
  method: 'POST',
  path: entry.method,
  body: entry.params,
});

/**
 * An op's reply as a JSON-RPC response entry: a 2xx or 3xx is a `result`, a 4xx or 5xx an `error`
 * (code -32000, the reply's body as its `data`), any other status an entry with neither (invalid).
 */
export function jsonrpcEntry(id: unknown, reply: OpReply): Record<string, unknown> {
  if (reply.status >= 200 && reply.status < 400) return { jsonrpc: '2.0', id, result: reply.body ?? null };
  if (reply.status >= 400 && reply.status < 600)
    return { jsonrpc: '2.0', id, error: { code: -32000, message: `HTTP ${reply.status}`, data: reply.body } };
  return { jsonrpc: '2.0', id };
}

/**
 * JSON-RPC 2.0: `POST {path}` with one request object, or an array of them (a batch) → an array of
 * response objects. An op's `path` is its JSON-RPC method and its `body` its params.
 */
export const jsonrpcWire: FakeWire = {
  isBatch: (request) => (request.body ?? '').trimStart().startsWith('['),
  decodeBatch: (body) => (JSON.parse(body || '[]') as JsonRpcRequest[]).map(rpcOp),
  decodeSingle: (request) => rpcOp(JSON.parse(request.body ?? '{}') as JsonRpcRequest),
  encodeBatch: (replies) => replies.map(([op, reply]) => jsonrpcEntry(op.id, reply)),
};

interface CompositeSubrequest {
  method: string;
  url: string;
  referenceId: string;
  body?: unknown;
  httpHeaders?: Record<string, string>;
}

/** `/services/data/v62.0/sobjects/Account/1` → `/sobjects/Account/1`: the path below the scope. */
const belowVersion = (url: string) => url.replace(/^\/services\/data\/[^/]+/, '');

/**
 * Salesforce Composite: `POST /services/data/{version}/composite`, `{allOrNone, compositeRequest:
 * [{method, url, referenceId, body?, httpHeaders?}]}` → `{compositeResponse: [{body, httpHeaders,
 * httpStatusCode, referenceId}]}`.
 */
export const salesforceWire: FakeWire = {
  isBatch: (request) => /^\/services\/data\/[^/]+\/composite$/.test(request.path),
  decodeBatch: (body) =>
    (
      JSON.parse(body || '{"compositeRequest":[]}') as { compositeRequest: CompositeSubrequest[] }
    ).compositeRequest.map((r) => ({
      id: r.referenceId,
      method: r.method,
      path: belowVersion(r.url),
      body: r.body,
    })),
  decodeSingle: (request) => ({
    id: 'single',
    method: request.method,
    path: belowVersion(request.path),
    body: request.body === undefined ? undefined : JSON.parse(request.body),
  }),
  encodeBatch: (replies) => ({
    compositeResponse: replies.map(([op, reply]) => ({
      body: reply.body === undefined ? null : reply.body,
      httpHeaders: reply.headers ?? {},
      httpStatusCode: reply.status,
      referenceId: op.id,
    })),
  }),
};

export interface FakeTransportOptions {
  /** The wire format. Default TalkJS. */
  readonly wire?: FakeWire;
}

export interface FakeTransport extends UpstreamTransport {
  /** Every call received, in order. */
  readonly calls: FakeCall[];
  /** How long each call takes on the clock (0: answered without a timer). Default 0. */
  latencyMs: number | ((call: FakeCall) => number);
  /** While true, calls wait (after their latency) until `release()`. */
  holding: boolean;
  /** Whole-call answers, one taken per call before anything else answers it. */
  readonly script: Array<(call: FakeCall) => CallAnswer>;
  /** A call's whole answer when the script is empty; undefined: its ops are answered one by one. */
  respond: (call: FakeCall) => CallAnswer | undefined;
  /** The order a batch's ops run in (a request after those it depends on) and are answered in. Default: as sent. */
  order: (ops: readonly FakeOp[], call: FakeCall) => readonly FakeOp[];
  /** Each op's answer. Default 200 with `{}`. */
  answerOp: (op: FakeOp, call: FakeCall) => OpReply;
  /** Runs a call's ops (`order`, `answerOp`) and answers them as the wire does. */
  answerOps(call: FakeCall): BufferedResponse;
  /** Lets the calls held so far go on. */
  release(): void;
  /** Resolves once `count` calls have been received in all. */
  received(count: number): Promise<void>;
}

/**
 * A fake upstream on `clock` (default the real one: vitest's fake timers then drive its latency and
 * `performance.now()` its instants).
 */
export function fakeTransport(clock: Clock = realClock, options: FakeTransportOptions = {}): FakeTransport {
  const wire = options.wire ?? talkjsWire;
  const held: Array<() => void> = [];
  let waiting: Array<{ count: number; resolve: () => void }> = [];

  const upstream: FakeTransport = {
    calls: [],
    latencyMs: 0,
    holding: false,
    script: [],
    respond: () => undefined,
    order: (ops) => ops,
    answerOp: () => ({ status: 200, body: {} }),

    async call(request, authorization, signal) {
      const batch = wire.isBatch(request);
      const ops = batch ? wire.decodeBatch(request.body ?? '') : [wire.decodeSingle(request)];
      const call: FakeCall = {
        index: upstream.calls.length,
        at: clock.now(),
        lane: batch ? 'batch' : 'single',
        size: ops.length,
        ops,
        paths: ops.map((op) => op.path),
        authorization,
        signal,
        request,
      };
      upstream.calls.push(call);
      for (const w of waiting.filter((x) => upstream.calls.length >= x.count)) w.resolve();
      waiting = waiting.filter((x) => upstream.calls.length < x.count);
      const latency =
        typeof upstream.latencyMs === 'function' ? upstream.latencyMs(call) : upstream.latencyMs;
      if (latency > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, latency));
      if (upstream.holding) await new Promise<void>((resolve) => held.push(resolve));
      const answer = upstream.script.shift()?.(call) ?? upstream.respond(call) ?? upstream.answerOps(call);
      if (answer instanceof Error) throw answer;
      return answer;
    },

    answerOps(call) {
      if (call.lane === 'single') {
        const first = call.ops[0];
        const reply = first ? upstream.answerOp(first, call) : { status: 200 };
        return { status: reply.status, headers: reply.headers ?? {}, body: JSON.stringify(reply.body ?? {}) };
      }
      // Ops run in `order`, except that a request runs after the requests it depends on (listed in
      // `order` all the same); one whose dependency failed is answered 424 without running.
      const ordered = upstream.order(call.ops, call);
      const ids = new Set(ordered.map((op) => String(op.id)));
      const done = new Map<FakeOp, OpReply>();
      const statusOf = new Map<string, number>();
      const ready = (op: FakeOp) => (op.dependsOn ?? []).every((id) => !ids.has(id) || statusOf.has(id));
      for (
        let left = ordered.filter((op) => !done.has(op));
        left.length > 0;
        left = left.filter((o) => !done.has(o))
      ) {
        const op = left.find(ready) ?? (left[0] as FakeOp);
        const dependencyFailed = op.dependsOn?.some((id) => (statusOf.get(id) ?? 0) >= 400);
        const reply =
          dependencyFailed && wire.failedDependency ? wire.failedDependency : upstream.answerOp(op, call);
        done.set(op, reply);
        statusOf.set(String(op.id), reply.status);
      }
      const replies = ordered.map((op) => [op, done.get(op) as OpReply] as const);
      return { status: 200, ...batchAnswerOf(wire, replies) };
    },

    release() {
      for (const go of held.splice(0)) go();
    },

    received(count) {
      if (upstream.calls.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ count, resolve }));
    },
  };
  return upstream;
}
