// The one way out to the upstream: a keep-alive undici pool bound to UPSTREAM_URL's origin, so no
// request can reach any other host (SPEC §8b), with a hard timeout on every call.

import type { Readable } from 'node:stream';
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import type { UpstreamRequest } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';

export interface UpstreamClientOptions {
  /** Origin plus optional base path, e.g. `https://api.talkjs.com`. */
  readonly url: string;
  readonly timeoutMs: number;
  readonly connections?: number;
}

export interface BufferedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export interface StreamedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
}

export interface StreamRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Readable | Buffer | string | undefined;
  readonly signal?: AbortSignal;
}

/** Maps a transport failure to the proxy's typed error: timeouts are 504, the rest 502. */
export function upstreamFailure(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
  ) {
    return new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'the upstream did not answer in time', { cause: error });
  }
  return new ProxyError('PROXY_UPSTREAM_UNAVAILABLE', 'the upstream connection failed', { cause: error });
}

export class UpstreamClient {
  readonly origin: string;
  readonly #basePath: string;
  readonly #pool: Pool;

  constructor(options: UpstreamClientOptions) {
    const url = new URL(options.url);
    this.origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#pool = new Pool(url.origin, {
      connections: options.connections ?? 64,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 5_000),
    });
  }

  /** Sends a request built by the dialect and reads the whole answer (batch calls, single lane). */
  async call(request: UpstreamRequest, authorization: string | undefined): Promise<BufferedResponse> {
    // The pool's headers and body timeouts bound the call (no timer per call: the profile showed them).
    const headers: Record<string, string> = { ...request.headers, accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      const res = await this.#pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path: this.#basePath + request.path,
        headers,
        body: request.body ?? null,
      });
      const body = await res.body.text();
      return { status: res.statusCode, headers: res.headers, body };
    } catch (error) {
      throw upstreamFailure(error);
    }
  }

  /** A streaming call for pass-through: the body goes up and comes back without buffering. */
  async stream(request: StreamRequest): Promise<StreamedResponse> {
    try {
      const res = await this.#pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path: this.#basePath + request.path,
        headers: request.headers,
        body: request.body ?? null,
        ...(request.signal ? { signal: request.signal } : {}),
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw upstreamFailure(error);
    }
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Aborts calls still running (the end of a shutdown grace period). */
  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}
