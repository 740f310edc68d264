// The answers the edge writes itself: a queued op's answer (SPEC §6), the proxy's own errors (SPEC
// §8), and the Server-Timing that tells a caller what happened to its call.

import type { Answer, ProxyError, Timing } from '@batch-proxy/core';
import { round } from './access-log.js';
import type { Call } from './call-record.js';
import type { PassThroughWhy } from './classify.js';
import { errorResponse } from './http-errors.js';

/** The proxy's own error answer, noted on the call for the metric and the access log. */
export function refuse(call: Call, error: ProxyError, extraHeaders: Record<string, string> = {}): Response {
  call.source = 'proxy';
  call.code = error.code;
  // A pass-through the proxy refused (too large, upstream unreachable) still says why it passed.
  const headers = call.why ? { ...extraHeaders, 'server-timing': passthroughTiming(call.why) } : extraHeaders;
  return errorResponse(error, call.requestId, headers);
}

/** A queued op's answer: the op's status and body, or the proxy's error, with its Server-Timing. */
export function answerResponse(answer: Answer, requestId: string): Response {
  const timingHeader = answer.timing ? serverTiming(answer.timing) : undefined;
  if (answer.kind === 'error') {
    return errorResponse(answer.error, requestId, timingHeader ? { 'server-timing': timingHeader } : {});
  }
  // The upstream's own answer headers (Graph: Location, ETag…) first; the proxy's id and timing win.
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...answer.headers,
    'x-request-id': requestId,
  };
  if (timingHeader) headers['server-timing'] = timingHeader;
  const nullBody = answer.status === 204 || answer.status === 205 || answer.status === 304;
  return new Response(nullBody ? null : answer.body, { status: answer.status, headers });
}

/** Why a call was not batched, for the caller (`passthrough;desc="header"`). */
export function passthroughTiming(why: PassThroughWhy): string {
  return `passthrough;desc="${why.reason}"`;
}

export function serverTiming(t: Timing): string {
  return `queue;dur=${round(t.queueMs)}, upstream;dur=${round(t.upstreamMs)}, batch;desc="${t.batchSize}", lane;desc="${t.lane}"`;
}
