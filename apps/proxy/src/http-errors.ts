// The one place where the proxy's typed errors become HTTP answers (SPEC §8: JSON errors).

import type { ProxyError } from '@batch-proxy/core';

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
