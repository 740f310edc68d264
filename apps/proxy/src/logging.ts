// The process's log output: pino for the operator's lines, the access log (access-log.ts) for one line
// per answered call, both through one destination that writes at most once per event-loop turn. Under
// load one turn answers a whole batch, so its lines leave in one write instead of one write each.

import type { Writable } from 'node:stream';
import { type DestinationStream, type Logger, pino } from 'pino';
import { type AccessLog, type AccessLogPolicy, createAccessLog } from './access-log.js';

export interface Logging {
  readonly logger: Logger;
  readonly access: AccessLog;
}

export interface LoggingOptions {
  readonly level: string;
  readonly accessLog: AccessLogPolicy;
  readonly sampleEvery: number;
  /** Where lines go (default: stdout, written asynchronously). */
  readonly sink?: LineSink;
}

/** What the batching destination writes to: pino's SonicBoom, or a stream in tests. */
export interface LineSink {
  write(chunk: string): unknown;
  flushSync?(): void;
}

/** Lines collected during one event-loop turn, written together at its end (setImmediate). */
export class TurnBatchedDestination implements DestinationStream {
  #pending = '';
  #scheduled = false;
  readonly #sink: LineSink;

  constructor(sink: LineSink) {
    this.#sink = sink;
  }

  write(line: string): void {
    this.#pending += line;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#push());
  }

  /** Hands what is pending to the sink and writes it out synchronously (exit paths only). */
  flushSync(): void {
    this.#push();
    try {
      this.#sink.flushSync?.();
    } catch {
      // A sink not open yet or already closed: nothing more can be written.
    }
  }

  /** pino's logger.flush(cb): everything pending written before `cb`. */
  flush(cb?: (error?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  #push(): void {
    this.#scheduled = false;
    if (this.#pending === '') return;
    const chunk = this.#pending;
    this.#pending = '';
    this.#sink.write(chunk);
  }
}

export function createLogging(options: LoggingOptions): Logging {
  const sink = options.sink ?? pino.destination({ dest: 1, sync: false });
  const destination = new TurnBatchedDestination(sink);
  // A process that exits (process.exit on a start-up mistake) still writes what it logged.
  process.once('exit', () => destination.flushSync());
  const logger = pino(
    {
      level: options.level,
      redact: {
        paths: ['authorization', 'headers.authorization', '*.authorization', 'secret', '*.secret'],
        censor: '[redacted]',
      },
    },
    destination,
  );
  const access = createAccessLog({
    policy: options.accessLog,
    sampleEvery: options.sampleEvery,
    enabled: logger.isLevelEnabled('info'),
    write: (line) => destination.write(line),
  });
  return { logger, access };
}

/** A sink over any writable stream (tests). */
export function streamSink(stream: Writable): LineSink {
  return { write: (chunk) => stream.write(chunk) };
}
