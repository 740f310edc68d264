// The TalkJS REST API batch dialect: `POST /v1/{appId}/batch` with `[seq, method, path, payload?,
// options?]` ops and `[seq, status, body]` results (SPEC §2).

import type {
  AppTarget,
  BatchAnswer,
  BatchDialect,
  OpInput,
  OpRequest,
  OpResult,
  UpstreamRequest,
} from './dialect.js';
import { readBatchEnvelope, splitResults } from './envelope.js';
import { isCommonlyDroppable } from './headers.js';

const MAX_OPS = 10;
const API_VERSION_HEADER = 'talkjs-rest-version';

function appRoot(appId: string): string {
  return `/v1/${encodeURIComponent(appId)}`;
}

/** JSON text of a string, safe to splice into a hand-built JSON array. */
const str = JSON.stringify;

export const talkjs: BatchDialect = {
  name: 'talkjs',
  maxOps: MAX_OPS,
  apiVersionHeader: API_VERSION_HEADER,

  // TalkJS ops carry no headers: the version header becomes the op's `api_version` option, what
  // every dialect may drop is dropped, and anything else sends the call through as it is.
  requestHeader(name: string) {
    return name === API_VERSION_HEADER || isCommonlyDroppable(name) ? 'drop' : 'pass';
  },

  // Batched and single answers alike are the status and the JSON body (SPEC §2).
  answerHeaders() {
    return {};
  },

  parseTarget(pathname: string): AppTarget | undefined {
    // `/v1/{appId}/{something}`; the appId segment must be non-empty and the rest must exist.
    if (!pathname.startsWith('/v1/')) return undefined;
    const slash = pathname.indexOf('/', 4);
    if (slash <= 4 || slash === pathname.length - 1) return undefined;
    const rawAppId = pathname.slice(4, slash);
    let appId: string;
    try {
      appId = decodeURIComponent(rawAppId);
    } catch {
      return undefined;
    }
    return { appId, path: pathname.slice(slash) };
  },

  isBatchEndpoint(target: AppTarget): boolean {
    return target.path === '/batch' || target.path === '/batch/';
  },

  toOp({ method, target, query, body, apiVersion }: OpInput) {
    // No prototype: a key such as `__proto__` is data, not a property write (SPEC §8c).
    const params: Record<string, string> = Object.create(null);
    for (const [key, value] of query) {
      if (method !== 'GET')
        return { passThrough: 'a query string on a write cannot travel in a batch op', reason: 'query' };
      if (Object.hasOwn(params, key))
        return { passThrough: `repeated query parameter "${key}"`, reason: 'query' };
      params[key] = value;
    }
    if (method === 'GET' && body !== undefined) return { passThrough: 'a GET with a body', reason: 'body' };
    return { op: { method, path: target.path, query: params, body, apiVersion } };
  },

  batchRequest(appId: string, ops: readonly OpRequest[]): UpstreamRequest {
    // Built as text so each caller's body is spliced in as received, never parsed and re-serialised.
    const parts = ops.map((op, seq) => {
      const payload = op.method === 'GET' ? str(op.query) : (op.body ?? '{}');
      const options = op.apiVersion === undefined ? '' : `,{"api_version":${str(op.apiVersion)}}`;
      return `[${seq},"${op.method}",${str(op.path)},${payload}${options}]`;
    });
    return {
      method: 'POST',
      path: `${appRoot(appId)}/batch`,
      headers: { 'content-type': 'application/json' },
      body: `[${parts.join(',')}]`,
    };
  },

  singleRequest(appId: string, op: OpRequest): UpstreamRequest {
    const qs = new URLSearchParams(op.query).toString();
    const headers: Record<string, string> = {};
    if (op.body !== undefined) headers['content-type'] = 'application/json';
    if (op.apiVersion !== undefined) headers[API_VERSION_HEADER] = op.apiVersion;
    return {
      method: op.method,
      path: `${appRoot(appId)}${op.path}${qs ? `?${qs}` : ''}`,
      headers,
      body: op.body,
    };
  },

  decodeResults(body: unknown, count: number): OpResult[] {
    if (!Array.isArray(body)) {
      return Array.from({ length: count }, () => ({
        ok: false,
        reason: 'the batch response is not an array',
      }));
    }
    // [seq, status, body]: a sequence number that is not a number is none of the proxy's ops.
    const entries = (body as unknown[]).map((entry) => {
      if (!Array.isArray(entry) || entry.length < 2) return undefined;
      const [seq, status, opBody] = entry as [unknown, unknown, unknown];
      return typeof seq === 'number' ? { seq, status, opBody } : undefined;
    });
    return splitResults(entries, count, ({ opBody }, status) => ({
      ok: true,
      status,
      body: opBody === undefined ? {} : opBody,
    }));
  },

  readBatchAnswer(status: number, body: string, count: number): BatchAnswer {
    return readBatchEnvelope(status, body, (decoded) => talkjs.decodeResults(decoded, count));
  },
};
