// Request headers that any dialect may drop from a batch op without changing what the upstream does,
// and answer headers that never travel from an upstream answer to a caller. Shared by the dialects so
// each one only says what is special about its API.

/**
 * Transport and hop-by-hop headers, content negotiation our JSON answer satisfies, client
 * identification, and tracing/request-id headers. Checked against what common clients send by
 * default: Node's fetch (accept, accept-language, sec-fetch-mode, user-agent, accept-encoding), curl
 * (user-agent, accept), Python requests (user-agent, accept-encoding, accept, connection), axios
 * (accept, content-type, user-agent, accept-encoding), Go net/http (user-agent, accept-encoding,
 * content-length) and Java's HttpClient (connection, upgrade, http2-settings on its h2c attempt,
 * user-agent).
 */
export const COMMON_DROPPABLE: ReadonlySet<string> = new Set([
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'authorization', // becomes the group's credential
  'cache-control',
  'connection',
  'content-length',
  'content-type', // checked separately: it must be JSON
  'expect',
  'host',
  'http2-settings',
  'keep-alive',
  'pragma',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'via',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
  'x-correlation-id',
  'request-id',
  'correlation-id',
  'traceparent',
  'tracestate',
  'baggage',
  'b3',
  'sentry-trace',
  'x-amzn-trace-id',
  'x-cloud-trace-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'x-datadog-origin',
  // Ours: the caller's hints to the proxy (SPEC §9), never the upstream's.
  'x-batch-bypass',
  'x-batch-max-wait-ms',
  'x-batch-priority',
]);
const COMMON_DROPPABLE_PREFIXES = ['x-b3-', 'sec-fetch-', 'sec-ch-ua', 'x-envoy-', 'x-ot-'];

/** True for a (lower-case) request header name every dialect may drop. */
export function isCommonlyDroppable(name: string): boolean {
  return COMMON_DROPPABLE.has(name) || COMMON_DROPPABLE_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Answer headers that describe one hop or the proxy's own answer, never the resource: an upstream's
 * value would be wrong (content-length of another body) or would shadow the proxy's (x-request-id,
 * server-timing).
 */
const NOT_RELAYED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-encoding',
  'date',
  'x-request-id',
  'server-timing',
]);

/**
 * The answer headers worth relaying to a caller, with lower-case names; a repeated header is joined
 * with ", " (RFC 9110 §5.3); values that are not text, or that Node would refuse, are left out.
 */
export function relayableHeaders(
  headers: Readonly<Record<string, unknown>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (!headers) return out;
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (NOT_RELAYED.has(name) || !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) continue;
    const text =
      typeof value === 'string'
        ? value
        : Array.isArray(value) && value.every((v) => typeof v === 'string')
          ? value.join(', ')
          : undefined;
    // A value Node would refuse to write (controls but tab, DEL, characters above \xff: node:http's
    // own rule) is dropped rather than failing the caller's answer.
    if (text !== undefined && !/[^\t\x20-\x7e\x80-\xff]/.test(text)) out[name] = text;
  }
  return out;
}
