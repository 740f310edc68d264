// The Google API batching dialect: `POST /batch/{api}/{version}` with a `multipart/mixed` body whose
// parts (`Content-Type: application/http`, `Content-ID: <item-N>`) are whole HTTP requests, answered
// by a `multipart/mixed` body of whole HTTP responses (`Content-ID: <response-item-N>`) in any order
// (developers.google.com/gmail/api/guides/batch; docs/google-batch-dialect.md).
//
// The scope (`AppTarget.appId`) is `{api}/{version}` (`gmail/v1`, `drive/v3`): one batch goes to one
// API. The outer request's headers other than Content-* apply to every part, so the batch carries
// only the credential outside; what one caller sent for its own call travels inside its part.

import { randomBytes } from 'node:crypto';
import type {
  AppTarget,
  BatchAnswer,
  BatchContext,
  BatchDialect,
  HeaderRule,
  OpInput,
  OpRequest,
  OpResult,
  UpstreamRequest,
} from './dialect.js';
import { readBatchText, splitResults } from './envelope.js';
import { isCommonlyDroppable, relayableHeaders } from './headers.js';
import { boundaryOf, readHttp, readPart, splitParts, statusOf } from './multipart.js';

/** Documented: at most 100 calls per batch (Gmail advises 50 or fewer; BATCH_MAX_OPS lowers it). */
const MAX_OPS = 100;

/** Request headers Google reads per call: the preconditions and the body's language of choice. */
const CARRIED: ReadonlySet<string> = new Set(['if-match', 'if-none-match', 'accept-language']);

/** Client telemetry Google's own libraries send on every call. */
const DROPPED: ReadonlySet<string> = new Set(['x-goog-api-client']);

const API = /^[a-z][a-z0-9]*$/;
const VERSION = /^v[0-9]+[a-z0-9.]*$/;

function isJsonType(value: string | undefined): boolean {
  const type = value?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** `/{api}/{version}/…` of an op: the whole path and query, as Google wants inside a part. */
function fullPath(scope: string, op: OpRequest): string {
  return `/${scope}${op.path}${op.search ?? ''}`;
}

function opHeaders(op: OpRequest): Record<string, string> {
  const headers: Record<string, string> = { ...op.headers };
  if (op.body !== undefined) headers['content-type'] = 'application/json; charset=UTF-8';
  return headers;
}

/**
 * A boundary no op's text contains (RFC 2046: the delimiter must not occur in any part); `token`
 * is its random half (a test's own sequence).
 */
export function boundaryFor(
  texts: readonly string[],
  token: () => string = () => randomBytes(12).toString('hex'),
): string {
  for (;;) {
    const boundary = `batch_proxy_${token()}`;
    if (!texts.some((text) => text.includes(boundary))) return boundary;
  }
}

/** `<response-item-N>` → N; undefined for any id the proxy did not send. */
function seqOf(contentId: string | undefined): number | undefined {
  const match = /^<?response-item-(0|[1-9][0-9]{0,5})>?$/.exec(contentId?.trim() ?? '');
  return match ? Number(match[1]) : undefined;
}

const noResults = (count: number, reason: string): OpResult[] =>
  Array.from({ length: count }, () => ({ ok: false, reason }));

/** One part's answer: a 429 goes again, JSON is decoded, any other body is the caller's text. */
function answerOf(status: number, headers: Record<string, string>, body: string): OpResult {
  const relayed = relayableHeaders(headers);
  // Throttled inside a 200 batch: Google did not run it; it goes again after its Retry-After.
  if (status === 429) return { ok: 'again', why: '429', retryAfter: headers['retry-after'] };
  if (body === '') return { ok: true, status, body: undefined, headers: relayed };
  if (!isJsonType(headers['content-type']))
    return { ok: true, status, body: undefined, headers: relayed, text: body };
  let decoded: unknown;
  try {
    decoded = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'the batch response has an invalid JSON body for this operation' };
  }
  if (status === 403 && isRateLimit(decoded))
    return { ok: 'again', why: '429', retryAfter: headers['retry-after'] };
  return { ok: true, status, body: decoded, headers: relayed };
}

/**
 * Gmail and Drive also refuse a call over a per-second quota with a 403 whose reason says so
 * (`rateLimitExceeded`, `userRateLimitExceeded`; their "Resolve errors" guides: retry with backoff):
 * not run, so it goes again like a 429. A daily quota's 403 (`dailyLimitExceeded`) is the caller's.
 */
function isRateLimit(body: unknown): boolean {
  const errors = (body as { error?: { errors?: unknown } } | null)?.error?.errors;
  return (
    Array.isArray(errors) &&
    errors.some((e) => {
      const reason = (e as { reason?: unknown } | null)?.reason;
      return reason === 'rateLimitExceeded' || reason === 'userRateLimitExceeded';
    })
  );
}

function decode(text: unknown, count: number, context: BatchContext | undefined): OpResult[] {
  const type = context?.headers['content-type'];
  const boundary = boundaryOf(typeof type === 'string' ? type : undefined);
  if (boundary === undefined)
    return noResults(count, 'the batch response is not multipart/mixed with a boundary');
  const parts = typeof text === 'string' ? splitParts(text, boundary) : undefined;
  if (parts === undefined) return noResults(count, 'the batch response has no multipart parts');
  const entries = parts.map((raw) => {
    const part = readPart(raw);
    const seq = seqOf(part.headers['content-id']);
    if (seq === undefined) return undefined;
    const http = readHttp(part.content);
    return { seq, status: statusOf(http.start), http };
  });
  return splitResults(entries, count, ({ http }, status) => answerOf(status, http.headers, http.body));
}

export const googleBatch: BatchDialect = {
  name: 'google-batch',
  maxOps: MAX_OPS,
  // "A set of n requests batched together counts toward your usage limit as n requests."
  cost: 'op',
  // Google selects the version by path.
  apiVersionHeader: '',
  // Most of Google's quotas are per user (`userRateLimitExceeded`): a part's 429 pauses its caller.
  throttleScope: 'credential',

  requestHeader(name: string): HeaderRule {
    if (CARRIED.has(name)) return 'carry';
    return DROPPED.has(name) || isCommonlyDroppable(name) ? 'drop' : 'pass';
  },

  answerHeaders(headers) {
    return relayableHeaders(headers);
  },

  parseTarget(pathname: string): AppTarget | undefined {
    const segments = pathname.split('/');
    // `/batch/{api}/{version}`: the API's own batch endpoint, scoped to that API.
    const batch = segments[1] === 'batch';
    const [api = '', version = ''] = segments.slice(batch ? 2 : 1, batch ? 4 : 3);
    if (!API.test(api) || !VERSION.test(version)) return undefined;
    const rest = segments.slice(batch ? 4 : 3).join('/');
    if (batch) return rest === '' ? { appId: `${api}/${version}`, path: '' } : undefined;
    // A call needs a resource below `/{api}/{version}`.
    return rest === '' ? undefined : { appId: `${api}/${version}`, path: `/${rest}` };
  },

  // Only the batch endpoint has an empty path below its scope (parseTarget).
  isBatchEndpoint(target: AppTarget): boolean {
    return target.path === '';
  },

  toOp({ method, target, body, headers, search, query }: OpInput) {
    if (method === 'GET' && body !== undefined) return { passThrough: 'a GET with a body', reason: 'body' };
    // Documented: batching does not carry media downloads.
    if (query.get('alt') === 'media')
      return { passThrough: 'a media download (alt=media) cannot travel in a batch', reason: 'query' };
    const carried: Record<string, string> = Object.create(null);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (CARRIED.has(name)) carried[name] = value;
    }
    const op: OpRequest = {
      method,
      path: target.path,
      query: {},
      body,
      apiVersion: undefined,
      headers: { ...carried },
      search: search === '?' ? '' : (search ?? ''),
    };
    return { op };
  },

  batchRequest(scope: string, ops: readonly OpRequest[]): UpstreamRequest {
    // Built as text so each caller's body is spliced in as received, never parsed and re-serialised.
    const requests = ops.map((op) => {
      const headers = Object.entries(opHeaders(op)).map(([name, value]) => `${name}: ${value}\r\n`);
      return `${op.method} ${fullPath(scope, op)} HTTP/1.1\r\n${headers.join('')}\r\n${op.body ?? ''}`;
    });
    const boundary = boundaryFor(requests);
    const parts = requests.map(
      (request, seq) =>
        `--${boundary}\r\nContent-Type: application/http\r\nContent-ID: <item-${seq}>\r\n\r\n${request}\r\n`,
    );
    return {
      method: 'POST',
      path: `/batch/${scope}`,
      headers: { 'content-type': `multipart/mixed; boundary=${boundary}` },
      body: `${parts.join('')}--${boundary}--\r\n`,
    };
  },

  singleRequest(scope: string, op: OpRequest): UpstreamRequest {
    return { method: op.method, path: fullPath(scope, op), headers: opHeaders(op), body: op.body };
  },

  /** `body` is the answer's text: its parts are found by the boundary in the answer's Content-Type. */
  decodeResults(body: unknown, count: number, _plan, context): OpResult[] {
    return decode(body, count, context);
  },

  readBatchAnswer(status: number, body: string, count: number, _plan, context): BatchAnswer {
    return readBatchText(status, body, (text) => decode(text, count, context));
  },
};
