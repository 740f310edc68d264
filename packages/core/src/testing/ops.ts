// Ops as callers submit them, for engine tests: a TalkJS-shaped read or write, or an op as the Graph
// dialect builds it (query text verbatim, carried headers); and the status a caller got back.

import type { Answer } from '../batcher/op.js';
import type { Method, OpRequest } from '../dialect/dialect.js';

/** A read of `path` with these query parameters. */
export function getOp(path: string, query: Record<string, string> = {}): OpRequest {
  return { method: 'GET', path, query, body: undefined, apiVersion: undefined };
}

/**
 * An op of `method` on `path`. `body` is sent as JSON; without one a write (POST, PUT, PATCH) sends
 * `{}` and a GET or DELETE none.
 */
export function opOf(method: Method, path: string, body?: unknown): OpRequest {
  const text =
    body !== undefined ? JSON.stringify(body) : method === 'GET' || method === 'DELETE' ? undefined : '{}';
  return { method, path, query: {}, body: text, apiVersion: undefined };
}

/**
 * An op as the Graph dialect's `toOp` builds it: the query text verbatim in `search`, the carried
 * headers (an op with a body carries its content-type), no `query`. `body` as in `opOf`.
 */
export function graphOp(
  method: Method,
  path: string,
  options: {
    readonly search?: string;
    readonly headers?: Record<string, string>;
    readonly body?: unknown;
  } = {},
): OpRequest {
  const { body } = opOf(method, path, options.body);
  return {
    method,
    path,
    query: {},
    body,
    apiVersion: undefined,
    headers: options.headers ?? (body === undefined ? {} : { 'content-type': 'application/json' }),
    search: options.search ?? '',
  };
}

/** The HTTP status a caller got: the upstream's, or the proxy error's. */
export function statusOf(answer: Answer): number {
  return answer.kind === 'result' ? answer.status : answer.error.status;
}
