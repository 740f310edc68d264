// A streaming reverse proxy for calls that cannot be batched (SPEC §3): method, path, query, headers
// and body go to UPSTREAM_URL, status, headers and body come back, nothing buffered.

import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { UpstreamClient } from '@batch-proxy/core';
import { HINT_HEADERS } from './caller-hints.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Drops hop-by-hop headers, including any the Connection header names (RFC 9110 §7.6.1). */
export function stripHopByHop(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  alsoDrop: readonly string[] = [],
): Record<string, string | string[]> {
  const named = new Set(alsoDrop);
  const connection = headers.connection;
  for (const value of Array.isArray(connection) ? connection : connection ? [connection] : []) {
    for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export interface PassThroughRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: IncomingHttpHeaders;
  /** The body still unread (a stream), already read (a buffer), or none. */
  readonly body: Readable | Buffer | undefined;
  readonly signal: AbortSignal;
}

export async function passThrough(upstream: UpstreamClient, req: PassThroughRequest): Promise<Response> {
  // Host names the proxy, not the upstream (undici sets the upstream's); the bypass and hint headers
  // are ours.
  const headers = stripHopByHop(req.headers, ['host', 'x-batch-bypass', 'expect', ...HINT_HEADERS]);
  const res = await upstream.stream({
    method: req.method,
    path: req.pathAndQuery,
    headers,
    body: req.body,
    signal: req.signal,
  });
  const out = new Headers();
  for (const [name, value] of Object.entries(stripHopByHop(res.headers))) {
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.set(name, value);
  }
  const nullBody = req.method === 'HEAD' || res.status === 204 || res.status === 304 || res.status < 200;
  if (nullBody) {
    res.body.resume();
    return new Response(null, { status: res.status, headers: out });
  }
  return new Response(Readable.toWeb(res.body) as ReadableStream, { status: res.status, headers: out });
}
