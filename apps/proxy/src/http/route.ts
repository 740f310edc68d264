// Decides, per request, whether a call may travel inside a batch or must pass through as it is
// (SPEC §3). Batching is only ever an optimisation: when in doubt, pass through.

import type { IncomingHttpHeaders } from 'node:http';
import {
  type AppTarget,
  type BatchDialect,
  isBatchableMethod,
  type Method,
  ProxyError,
} from '@batch-proxy/core';

const NONE: ReadonlySet<string> = new Set();

/**
 * Why a call was not batched, as a closed set of codes (SPEC §3): shown to the caller in
 * `Server-Timing`, in the access log and as a metric label, so an operator can tell which rule
 * turned batching off without reading code.
 */
export const PASS_REASONS = [
  'route', // not a /v1/{appId}/... resource
  'batch-endpoint', // the caller's own batch call
  'bypass', // X-Batch-Bypass: 1
  'method', // not GET/POST/PUT/PATCH/DELETE
  'header', // a header the dialect neither carries nor may drop (BATCH_DROPPABLE_HEADERS extends it)
  'content-type', // a body that is not JSON
  'body', // a write without a body, or a body an op cannot carry (a GET with a body)
  'query', // a query string an op cannot carry (repeated parameter, or on a write)
  'notification', // a JSON-RPC notification (no id): it expects no answer to split back
  'client-batch', // a JSON-RPC array the caller batched itself, on the ordinary endpoint
] as const;
export type PassReason = (typeof PASS_REASONS)[number];

/** A pass-through decision; `header` names the offending header (its name only, never its value). */
export interface PassThroughWhy {
  readonly reason: PassReason;
  readonly header?: string;
}

/**
 * BATCH_DROPPABLE_HEADERS: header names (RFC 9110 tokens), comma-separated, compared in lower case.
 * Returns the names, or the first entry that is not a header name.
 */
export function parseHeaderList(value: string): ReadonlySet<string> | { readonly invalid: string } {
  const names = new Set<string>();
  for (const entry of value.split(',')) {
    const name = entry.trim().toLowerCase();
    if (name === '') continue;
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) return { invalid: entry.trim() };
    names.add(name);
  }
  return names;
}

export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const type = value.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

export interface RequestTarget {
  readonly pathname: string;
  readonly search: string;
}

/**
 * The path and query of a raw request-target. The Host header and an absolute-form target's
 * authority are ignored (no open proxy); dot segments, encoded or not, are refused so no path can
 * climb into another app (SPEC §8b). So is a backslash, raw or encoded: an upstream that parses paths
 * as WHATWG URLs reads it as a slash, and `\..\` would climb past the dot-segment check.
 */
export function parseRequestTarget(raw: string): RequestTarget | ProxyError {
  let target = raw;
  if (!target.startsWith('/')) {
    // absolute-form: keep only path and query
    const match = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
    if (!match) return new ProxyError('PROXY_BAD_REQUEST', 'the request target must be a path');
    target = target.slice(match[0].length) || '/';
    if (!target.startsWith('/')) target = `/${target}`;
  }
  const hash = target.indexOf('#');
  if (hash !== -1) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const pathname = q === -1 ? target : target.slice(0, q);
  const search = q === -1 ? '' : target.slice(q);
  if (pathname.includes('\\'))
    return new ProxyError('PROXY_BAD_REQUEST', 'the path may not contain a backslash');
  // The common path has no percent-encoding, so every segment decodes to itself and only dot
  // segments and NUL can be wrong: three scans instead of a split and a decode per segment (this
  // runs on every call). The pathname starts with '/', so a dot segment always follows a '/'.
  if (!pathname.includes('%') && !pathname.includes('/.') && !pathname.includes('\0'))
    return { pathname, search };
  for (const segment of pathname.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return new ProxyError('PROXY_BAD_REQUEST', 'the path has an invalid percent-encoding');
    }
    if (decoded === '.' || decoded === '..') {
      return new ProxyError('PROXY_BAD_REQUEST', 'the path may not contain "." or ".." segments');
    }
    // An encoded slash could smuggle a segment boundary (and so another appId) past this check.
    if (decoded !== segment && (decoded.includes('/') || decoded.includes('\\'))) {
      return new ProxyError('PROXY_BAD_REQUEST', 'the path may not contain encoded slashes');
    }
    if (decoded.includes('\0')) return new ProxyError('PROXY_BAD_REQUEST', 'the path may not contain NUL');
  }
  return { pathname, search };
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * One spelling per resource (SPEC §8c): percent-encoded unreserved characters decoded (`%75` → `u`),
 * other percent-encodings in upper case, empty segments dropped (`//users/` → `/users`). Equivalent
 * under RFC 3986 §6.2.2 except the dropped segments, which no upstream route depends on. Run after
 * parseRequestTarget, which has already refused dot segments and encoded slashes.
 */
export function canonicalPath(pathname: string): string {
  if (!pathname.includes('%') && !pathname.includes('//') && !(pathname.length > 1 && pathname.endsWith('/')))
    return pathname;
  const segments: string[] = [];
  for (const segment of pathname.split('/')) {
    if (segment === '') continue;
    segments.push(
      segment.replace(/%[0-9A-Fa-f]{2}/g, (encoded) => {
        const char = String.fromCharCode(Number.parseInt(encoded.slice(1), 16));
        return UNRESERVED.test(char) ? char : encoded.toUpperCase();
      }),
    );
  }
  return `/${segments.join('/')}`;
}

export type Route =
  | { readonly kind: 'batch'; readonly method: Method; readonly target: AppTarget }
  | { readonly kind: 'client-batch'; readonly why: PassThroughWhy; readonly target: AppTarget }
  | { readonly kind: 'pass'; readonly why: PassThroughWhy; readonly target: AppTarget | undefined };

/**
 * The decision that needs no body: method, path and headers. `alsoDroppable` are the operator's
 * additions to the allow-list (BATCH_DROPPABLE_HEADERS).
 */
export function route(
  dialect: BatchDialect,
  method: string,
  pathname: string,
  headers: IncomingHttpHeaders,
  alsoDroppable: ReadonlySet<string> = NONE,
): Route {
  const target = dialect.parseTarget(pathname);
  if (!target) return { kind: 'pass', why: { reason: 'route' }, target };
  if (dialect.isBatchEndpoint(target))
    return { kind: 'client-batch', why: { reason: 'batch-endpoint' }, target };
  if (headers['x-batch-bypass'] === '1') return { kind: 'pass', why: { reason: 'bypass' }, target };
  if (!isBatchableMethod(method)) return { kind: 'pass', why: { reason: 'method' }, target };
  for (const name of Object.keys(headers)) {
    // The dialect says what each header does; the operator may make more of them droppable.
    if (dialect.requestHeader(name) === 'pass' && !alsoDroppable.has(name))
      return { kind: 'pass', why: { reason: 'header', header: name }, target };
  }
  const contentType = headers['content-type'];
  if (contentType !== undefined && !isJsonContentType(contentType)) {
    return { kind: 'pass', why: { reason: 'content-type' }, target };
  }
  return { kind: 'batch', method, target };
}

/** The caller's headers the dialect carries inside the op (lower-case names, single values only). */
export function carriedHeaders(dialect: BatchDialect, headers: IncomingHttpHeaders): Record<string, string> {
  const carried: Record<string, string> = {};
  // Object.keys, not Object.entries: no [name, value] array per header on every call.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (typeof value === 'string' && dialect.requestHeader(name) === 'carry') carried[name] = value;
  }
  return carried;
}
