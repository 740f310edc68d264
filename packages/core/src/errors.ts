// Every error the proxy itself answers with: a stable code, whether a retry may help, and one HTTP
// status per code (the edge maps them in one place).

export const errorStatus = {
  PROXY_BAD_REQUEST: 400,
  PROXY_MALFORMED_JSON: 400,
  PROXY_UNAUTHORIZED: 401,
  PROXY_NOT_FOUND: 404,
  PROXY_BODY_TOO_LARGE: 413,
  PROXY_QUEUE_FULL: 429,
  PROXY_CLIENT_CLOSED: 499,
  PROXY_INTERNAL: 500,
  PROXY_UPSTREAM_BAD_RESPONSE: 502,
  PROXY_UPSTREAM_UNAVAILABLE: 502,
  PROXY_DEADLINE_EXCEEDED: 503,
  /** The app's circuit breaker is open: its upstream failed repeatedly (batcher/breaker.ts). */
  PROXY_CIRCUIT_OPEN: 503,
  PROXY_DRAINING: 503,
  PROXY_UPSTREAM_TIMEOUT: 504,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof errorStatus;

export interface ProxyErrorOptions {
  /** Seconds the caller should wait before retrying; sent as `Retry-After`. */
  retryAfterSec?: number;
  cause?: unknown;
}

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly status: number;
  readonly retryAfterSec: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ProxyErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = errorStatus[code];
    this.retryAfterSec = options.retryAfterSec;
  }

  /** Whether the same call may succeed if the caller tries again later. */
  get retryable(): boolean {
    return this.retryAfterSec !== undefined || this.status >= 502;
  }

  toJSON(requestId?: string): { error: { code: ErrorCode; message: string; requestId?: string } } {
    return { error: { code: this.code, message: this.message, ...(requestId ? { requestId } : {}) } };
  }
}
