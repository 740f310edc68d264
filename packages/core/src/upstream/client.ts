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
  /** The origin and base path every call goes below: what UPSTREAM_URL names, as the logs show it. */
  readonly url: string;
  readonly #basePath: string;
  readonly #pool: Pool;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  /** One listener per signal for all the calls on it (the engine passes the same one to every call). */
  readonly #fanouts = new WeakMap<AbortSignal, SignalFanout>();

  constructor(options: UpstreamClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const url = new URL(options.url);
    this.origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.url = url.origin + this.#basePath;
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
  call(
    request: UpstreamRequest,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<BufferedResponse> {
    const headers: Record<string, string> = { ...request.headers, accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    return new Promise((resolve, reject) => {
      const call = new BufferedCall(
        this.#timeoutMs,
        this.#maxResponseBytes,
        signal && this.#fanout(signal),
        resolve,
        reject,
      );
      // dispatch does not throw: a refused request (pool closed, bad options) comes to onResponseError.
      this.#pool.dispatch(
        {
          method: request.method as Dispatcher.HttpMethod,
          path: this.#basePath + request.path,
          headers,
          body: request.body ?? null,
        },
        call,
      );
    });
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

  #fanout(signal: AbortSignal): SignalFanout {
    let fanout = this.#fanouts.get(signal);
    if (!fanout) {
      fanout = new SignalFanout(signal);
      this.#fanouts.set(signal, fanout);
    }
    return fanout;
  }

  /** Aborts calls still running (the end of a shutdown grace period). */
  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}

/**
 * One buffered call as an undici dispatch handler: the body chunks go straight into an array, with no
 * Readable, async iterator, AbortController or RequestHandler in between (what `pool.request` adds,
 * about 6 % of the proxy's CPU under load). It keeps what `request` gives: the headers object comes
 * from undici's own parser (`parseHeaders`, repeated names as arrays), and an abort that comes before
 * undici hands over the request is held and applied then, as `request` does.
 */
class BufferedCall implements Dispatcher.DispatchHandler {
  readonly #max: number;
  readonly #resolve: (response: BufferedResponse) => void;
  readonly #reject: (error: ProxyError) => void;
  // One timer per call (Node keeps timers of one duration in one list: O(1) each), no closure.
  readonly #timer: NodeJS.Timeout;
  readonly #fanout: SignalFanout | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  /** Set by `abort`: why the call ends early, applied in onRequestStart if undici had not yet started it. */
  #reason: unknown;
  #aborted = false;
  #status = 0;
  #headers: BufferedResponse['headers'] = {};
  readonly #chunks: Buffer[] = [];
  #size = 0;

  constructor(
    timeoutMs: number,
    max: number,
    fanout: SignalFanout | undefined,
    resolve: (response: BufferedResponse) => void,
    reject: (error: ProxyError) => void,
  ) {
    this.#max = max;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#timer = setTimeout(onDeadline, timeoutMs, this);
    // Held by the signal's fan-out until the call ends; no AbortSignal.any: it leaks when one input
    // (the engine's shutdown signal) lives long (node#55351).
    if (fanout?.signal.aborted) this.abort(fanout.signal.reason);
    else if (fanout) {
      this.#fanout = fanout;
      fanout.add(this);
    }
  }

  /** Ends the call with `reason` (mapped by upstreamFailure); the first reason wins. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    // Aborting runs onResponseError at once. Before undici hands the request over there is nothing to
    // abort yet, so onRequestStart does it: the call ends when its turn comes, as with `pool.request`.
    this.#controller?.abort(reason as Error);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(this.#reason as Error);
  }

  /** Also called for an informational answer (103 Early Hints); the final one comes after and replaces it. */
  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: BufferedResponse['headers'],
  ): void {
    this.#status = statusCode;
    this.#headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.#max) {
      // The rest is not read: aborting closes the connection and comes back through onResponseError.
      controller.abort(
        new ProxyError(
          'PROXY_UPSTREAM_BAD_RESPONSE',
          `the upstream answer is larger than ${this.#max} bytes`,
        ),
      );
      return;
    }
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    const chunks = this.#chunks;
    // Decoded before the call ends: if this throws (a string too long), undici calls onResponseError.
    const body =
      chunks.length === 1
        ? (chunks[0] as Buffer).toString('utf8')
        : Buffer.concat(chunks, this.#size).toString('utf8');
    this.#end();
    this.#resolve({ status: this.#status, headers: this.#headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#end();
    this.#reject(upstreamFailure(error));
  }

  /** The call is over: no deadline, no listener left on a long-lived signal. */
  #end(): void {
    clearTimeout(this.#timer);
    this.#fanout?.delete(this);
  }
}

/**
 * The calls in flight on one signal, behind a single listener that is there only while some call is.
 * One listener per call made Node print a MaxListenersExceededWarning (plain text on stderr, which
 * breaks JSON-only log collection) as soon as more than 10 calls were in flight on the engine's
 * shared shutdown signal (issue #32); raising the limit would only hide that count. A Set also keeps
 * the garbage collector's work flat: Node's EventTarget leaves a removed listener pointing at its
 * neighbours, so with a listener per call one promoted to the old generation kept the next, young ones
 * (with their chunks, headers and promise) alive and promoted too — three times the major GCs under
 * the same load — while a Set forgets a deleted call outright.
 */
class SignalFanout {
  readonly signal: AbortSignal;
  readonly #calls = new Set<BufferedCall>();

  constructor(signal: AbortSignal) {
    this.signal = signal;
  }

  add(call: BufferedCall): void {
    if (this.#calls.size === 0) this.signal.addEventListener('abort', this, { once: true });
    this.#calls.add(call);
  }

  /** The call is over; the last one out takes the listener off, so an idle signal holds nothing. */
  delete(call: BufferedCall): void {
    if (this.#calls.delete(call) && this.#calls.size === 0) this.signal.removeEventListener('abort', this);
  }

  /** The signal's reason is each call's error (an AbortError if the signal was given none). */
  handleEvent(): void {
    const reason = this.signal.reason;
    const calls = [...this.#calls];
    // Cleared first: an aborted call that ends at once deletes itself, and the listener is gone anyway.
    this.#calls.clear();
    for (const call of calls) call.abort(reason);
  }
}

function onDeadline(call: BufferedCall): void {
  call.abort(new DOMException('the upstream did not answer in time', 'TimeoutError'));
}
