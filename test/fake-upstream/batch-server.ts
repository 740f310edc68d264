// The HTTP half both fake upstreams share (TalkJS in index.ts, Microsoft Graph in test/fake-graph):
// reading bodies, answering with a dialect's headers after the configured latency, the call log,
// the seeded randomness behind execution order and faults, and applying a call's transport fault
// around the work. What a call means (auth, limits, the batch format, the resources) is the dialect's.

import { randomInt } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { TransportFault } from './fault-plan.js';
import { listen } from './listen.js';
import { mulberry32 } from './prng.js';
import { Timers } from './timers.js';

/** One answer: status, headers of its own and a JSON body (absent: an empty body). */
export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** A body already encoded (Google's multipart/mixed), written as it is in place of `body`. */
  raw?: string;
}

/** The bytes of an answer's body. */
function payloadOf(answer: Answer): string {
  return answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
}

/** How a dialect writes answers: the part of the wire format that is not the batch's own. */
export interface Codec {
  /** The headers of a JSON answer (besides Content-Length), e.g. its Content-Type and a request id. */
  headers(answer: Answer): Record<string, string>;
  /** The answer to an injected `{ status }` fault; `body` is the fault's own, when it has one. */
  faultAnswer(status: number, retryAfterSec: number | undefined, body: unknown): Answer;
  /** The answer when the fake itself threw while handling a call. */
  bug(message: string): Answer;
  /** Back to how it started (e.g. its request-id counter), with the fake. */
  reset?(): void;
}

/** One HTTP call the fake answered, as a request log shows it. */
export interface AnsweredCall {
  callId: number;
  method: string;
  /** The request target as received (path and query). */
  target: string;
  status: number;
  /** Operations of a batch call that was executed; undefined for other calls. */
  size?: number;
  ms: number;
}

export interface BatchServerOptions {
  codec: Codec;
  /** Bigger bodies are read to the end and reported `tooLarge`. */
  bodyLimitBytes: number;
  /** Added to every answer (ms), after the work is done. Default 0. */
  latencyMs?: number | (() => number) | undefined;
  /** Seed of the PRNGs behind execution/answer order and random faults. Default: random. */
  seed?: number | undefined;
  /** Called once per HTTP call when its answer has been written. */
  onCall?: ((call: AnsweredCall) => void) | undefined;
}

/** A call as it arrived: its number and when (performance.now(), ms: limiters count arrivals). */
export interface Arrival {
  callId: number;
  at: number;
}

export class BatchServer {
  readonly seed: number;
  /** Execution and answer order. */
  orderRandom: () => number;
  /** Which random fault a call takes. */
  faultRandom: () => number;
  readonly #options: BatchServerOptions;
  readonly #timers = new Timers();
  readonly #sizes = new WeakMap<ServerResponse, number>();
  #calls = 0;

  constructor(options: BatchServerOptions) {
    this.#options = options;
    this.seed = options.seed ?? randomInt(2 ** 31);
    this.orderRandom = mulberry32(this.seed);
    this.faultRandom = mulberry32(this.seed ^ 0x5bd1e995);
  }

  /** Call numbers and both PRNGs back to how they started. */
  reset(): void {
    this.#calls = 0;
    this.#options.codec.reset?.();
    this.orderRandom = mulberry32(this.seed);
    this.faultRandom = mulberry32(this.seed ^ 0x5bd1e995);
  }

  /** Numbers a call as it arrives and logs it (onCall) once its answer is written. */
  arrive(req: IncomingMessage, res: ServerResponse, method: string): Arrival {
    const arrival = { callId: ++this.#calls, at: performance.now() };
    const onCall = this.#options.onCall;
    if (onCall) {
      res.once('finish', () => {
        const size = this.#sizes.get(res);
        onCall({
          callId: arrival.callId,
          method,
          target: req.url ?? '/',
          status: res.statusCode,
          ...(size === undefined ? {} : { size }),
          ms: performance.now() - arrival.at,
        });
      });
    }
    return arrival;
  }

  /** Notes how many operations the batch call answered on `res` carried (for the call log). */
  executedBatch(res: ServerResponse, size: number): void {
    this.#sizes.set(res, size);
  }

  /** Collects the body up to the limit; beyond it keeps draining and reports `tooLarge`. */
  readBody(req: IncomingMessage): Promise<{ buf: Buffer; tooLarge: boolean }> {
    const limit = this.#options.bodyLimitBytes;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) chunks.push(chunk);
      });
      req.on('end', () => resolve({ buf: Buffer.concat(chunks), tooLarge: size > limit }));
      // An aborted upload is never answered; nothing to execute.
      req.on('error', () => {});
    });
  }

  sleep(ms: number | undefined): Promise<void> {
    return this.#timers.sleep(ms);
  }

  latency(): number {
    const latency = this.#options.latencyMs;
    return typeof latency === 'function' ? latency() : (latency ?? 0);
  }

  /** Writes the answer now (nothing if the socket is gone). */
  write(res: ServerResponse, answer: Answer): void {
    if (res.destroyed) return;
    const payload = payloadOf(answer);
    res.writeHead(answer.status, {
      ...this.#options.codec.headers(answer),
      'content-length': String(Buffer.byteLength(payload)),
    });
    res.end(payload);
  }

  /** Writes the answer after the configured latency. */
  reply(res: ServerResponse, answer: Answer): void {
    const wait = this.latency();
    if (wait > 0) void this.sleep(wait).then(() => this.write(res, answer));
    else this.write(res, answer);
  }

  /** Answers an injected `{ status }` fault in the dialect's words. */
  replyFault(res: ServerResponse, fault: TransportFault): void {
    const status = fault.status ?? 500;
    this.reply(res, this.#options.codec.faultAnswer(status, fault.retryAfterSec, fault.body));
  }

  /**
   * Runs `execute` (which records what it runs) with the call's transport fault around it and
   * answers: the fault may hold the answer, answer an error before or after the work, drop the
   * connection before or after it, send half a body, or send HTML.
   */
  async serve(res: ServerResponse, fault: TransportFault | undefined, execute: () => Answer): Promise<void> {
    if (fault?.reset === 'before-execute') {
      await this.sleep(fault.delayMs);
      res.socket?.destroy();
      return;
    }
    if (fault?.status !== undefined && !fault.afterExecute) {
      await this.sleep(fault.delayMs);
      return this.replyFault(res, fault);
    }
    if (fault?.delayBeforeExecute) await this.sleep(fault.delayMs);
    const result = execute();
    if (fault && !fault.delayBeforeExecute) await this.sleep(fault.delayMs);
    if (fault?.reset === 'after-execute') {
      res.socket?.destroy();
      return;
    }
    if (fault?.status !== undefined) return this.replyFault(res, fault);
    if (fault?.notJson) {
      await this.sleep(this.latency());
      if (res.destroyed) return;
      const html = '<html><body>upstream hiccup</body></html>';
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(html)) });
      res.end(html);
      return;
    }
    if (fault?.truncateBody) {
      await this.sleep(this.latency());
      const full = Buffer.from(result.raw ?? JSON.stringify(result.body ?? {}));
      if (res.destroyed) return;
      res.writeHead(result.status, {
        ...this.#options.codec.headers(result),
        'content-length': String(full.length),
      });
      res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.socket?.destroy());
      return;
    }
    this.reply(res, result);
  }

  /** Answers 500 in the dialect's words if handling a call threw before anything was written. */
  guard(res: ServerResponse, handling: Promise<void>): void {
    handling.catch((err: unknown) => {
      if (!res.headersSent) this.write(res, this.#options.codec.bug(String(err)));
    });
  }

  /** Listens on `where` (default: a free loopback port). */
  listen(
    onRequest: RequestListener,
    where: { port?: number | undefined; host?: string | undefined },
  ): ReturnType<typeof listen> {
    return listen(onRequest, this.#timers, where);
  }
}

/** Whether a Content-Type names JSON (parameters such as charset aside). */
export function isJsonType(value: string | undefined): boolean {
  return value?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}
