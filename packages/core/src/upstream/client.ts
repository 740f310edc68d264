// The one way out to the upstream: a keep-alive undici pool bound to UPSTREAM_URL's origin, so no
// request can reach any other host (SPEC §8b), with a hard deadline on every buffered call and a
// bound on the size of what it buffers.

import type { Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import type { UpstreamRequest } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { Pool as LeanPool, errors as undiciErrors } from './undici-pool.js';

export interface UpstreamClientOptions {
  /** Origin plus optional base path, e.g. `https://api.talkjs.com`. */
  readonly url: string;
  /** A buffered call (`call`) is answered within this, whole body included, or fails with 504. */
  readonly timeoutMs: number;
  readonly connections?: number;
  /** The largest answer `call` buffers; a larger one fails (502). Default 32 MiB. */
  readonly maxResponseBytes?: number;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

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
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(options: UpstreamClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const url = new URL(options.url);
    this.origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#pool = new LeanPool(url.origin, {
      connections: options.connections ?? 64,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 5_000),
    });
  }

  /**
   * Sends a request built by the dialect and reads the whole answer (batch calls, single lane), within
   * the timeout from start to last byte — the pool's idle timeouts alone let a dripping answer run
   * on — and up to the size bound. `signal` ends it early (shutdown).
   */
  async call(
    request: UpstreamRequest,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<BufferedResponse> {
    const headers: Record<string, string> = { ...request.headers, accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    // One timer per call (Node keeps timers of one duration in one list: O(1) each), and no
    // AbortSignal.any: it leaks when one input (the engine's shutdown signal) lives long (node#55351).
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('the upstream did not answer in time', 'TimeoutError')),
      this.#timeoutMs,
    );
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.#pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path: this.#basePath + request.path,
        headers,
        body: request.body ?? null,
        signal: controller.signal,
      });
      const body = await readBounded(res.body, this.#maxResponseBytes);
      return { status: res.statusCode, headers: res.headers, body };
    } catch (error) {
      throw upstreamFailure(error);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
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

/** The body as text, or a 502 once it passes `max` bytes (the rest is not read). */
async function readBounded(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw new ProxyError('PROXY_UPSTREAM_BAD_RESPONSE', `the upstream answer is larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
