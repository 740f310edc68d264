// The one place where the proxy's typed errors become HTTP answers (SPEC §8: JSON errors).

import type { ProxyError } from '@batch-proxy/core';

export function errorResponse(
  error: ProxyError,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-request-id': requestId,
    ...extraHeaders,
  };
  if (error.retryAfterSec !== undefined) headers['retry-after'] = String(error.retryAfterSec);
  // 499 is nginx's "client closed request": nobody reads it, but logs and metrics should say so.
  return new Response(JSON.stringify(error.toJSON(requestId)), { status: error.status, headers });
}
