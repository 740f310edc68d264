// The answers the edge writes itself: a queued op's answer (SPEC §6), the proxy's own errors (SPEC
// §8: the one place where its typed errors become HTTP answers, as JSON), and the Server-Timing that
// tells a caller what happened to its call.

import type { ServerResponse } from 'node:http';
import type { Answer, ProxyError, Timing } from '@batch-proxy/core';
import { round } from './access-log.js';
import type { Call } from './call-record.js';
import { ignoredTiming } from './caller-hints.js';
import type { PassThroughWhy } from './route.js';

/** An answer the edge writes whole: status, headers and a JSON body (null: none). */
export interface AnswerParts {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string | null;
}

export function errorParts(
  error: ProxyError,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): AnswerParts {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-request-id': requestId,
    ...extraHeaders,
  };
  if (error.retryAfterSec !== undefined) headers['retry-after'] = String(error.retryAfterSec);
  // 499 is nginx's "client closed request": nobody reads it, but logs and metrics should say so.
  return { status: error.status, headers, body: JSON.stringify(error.toJSON(requestId)) };
}

export function errorResponse(
  error: ProxyError,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): Response {
  const { status, headers, body } = errorParts(error, requestId, extraHeaders);
  return new Response(body, { status, headers });
}

/** The proxy's own error answer, noted on the call for the metric and the access log. */
export function refuse(call: Call, error: ProxyError, extraHeaders: Record<string, string> = {}): Response {
  call.source = 'proxy';
  call.code = error.code;
  // A pass-through the proxy refused (too large, upstream unreachable) still says why it passed.
  const timing = withIgnored(call, call.why ? passthroughTiming(call.why) : undefined);
  const headers = timing ? { ...extraHeaders, 'server-timing': timing } : extraHeaders;
  return errorResponse(error, call.requestId, headers);
}

/** A Server-Timing value with the hint the caller sent and the proxy ignored, if any, appended. */
export function withIgnored(call: Pick<Call, 'ignored'>, timing: string | undefined): string | undefined {
  if (!call.ignored) return timing;
  const ignored = ignoredTiming(call.ignored);
  return timing ? `${timing}, ${ignored}` : ignored;
}

const NO_HINTS: Pick<Call, 'ignored'> = { ignored: undefined };

/** A queued op's answer: the op's status and body, or the proxy's error, with its Server-Timing. */
export function answerParts(
  answer: Answer,
  requestId: string,
  call: Pick<Call, 'ignored'> = NO_HINTS,
): AnswerParts {
  const timingHeader = withIgnored(call, answer.timing ? serverTiming(answer.timing) : undefined);
  if (answer.kind === 'error') {
    return errorParts(answer.error, requestId, timingHeader ? { 'server-timing': timingHeader } : {});
  }
  // The upstream's own answer headers (Graph: Location, ETag…) first; the proxy's id and timing win.
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...answer.headers,
    'x-request-id': requestId,
  };
  if (timingHeader) headers['server-timing'] = timingHeader;
  const nullBody = answer.status === 204 || answer.status === 205 || answer.status === 304;
  return { status: answer.status, headers, body: nullBody ? null : answer.body };
}

/**
 * Writes an answer straight to node's response, as one write: the length is set before the head is
 * stored (node would otherwise choose chunked encoding for a head written before its body). The parts'
 * headers are the answer's own: the length is added to them.
 */
export function writeAnswer(outgoing: ServerResponse, parts: AnswerParts): void {
  if (outgoing.headersSent) {
    // Never two answers on one call: a second one can only be a fault; the caller gets a cut.
    outgoing.destroy();
    return;
  }
  const { status, headers, body } = parts;
  if (body === null) {
    outgoing.writeHead(status, headers);
    outgoing.end();
    return;
  }
  headers['content-length'] = String(Buffer.byteLength(body));
  outgoing.writeHead(status, headers);
  outgoing.end(body);
}

/** Why a call was not batched, for the caller (`passthrough;desc="header"`). */
export function passthroughTiming(why: PassThroughWhy): string {
  return `passthrough;desc="${why.reason}"`;
}

export function serverTiming(t: Timing): string {
  return `queue;dur=${round(t.queueMs)}, upstream;dur=${round(t.upstreamMs)}, batch;desc="${t.batchSize}", lane;desc="${t.lane}"`;
}
