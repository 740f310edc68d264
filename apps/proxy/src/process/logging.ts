// The process's log output: pino for the operator's lines, the access log (access-log.ts) for one line
// per answered call, both through one destination that writes at most once per event-loop turn. Under
// load one turn answers a whole batch, so its lines leave in one write instead of one write each.

import type { Writable } from 'node:stream';
import { type DestinationStream, type Logger, pino } from 'pino';
import { type AccessLog, type AccessLogPolicy, createAccessLog } from '../http/access-log.js';

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

/** What the batching destination writes to: stdout (`stdoutSink`), or a stream in tests. */
export interface LineSink {
  write(chunk: string): unknown;
  flushSync?(): void;
  /** Calls back once every chunk given to `write` is written (a sink that writes asynchronously). */
  afterWrites?(cb: () => void): void;
}

/**
 * Stdout through pino's SonicBoom, written asynchronously (in libuv's thread pool), and knowing when
 * its writes are done. SonicBoom's own `flush(cb)` calls back at once (it waits only with a
 * minLength), and its `flushSync` writes what is queued while an earlier write still waits in the
 * pool: behind slow DNS lookups or file reads there, the last lines (`stopped`) came out before the
 * ones logged first (`draining`), or alone (issue #32).
 */
export function stdoutSink(): LineSink {
  const boom = pino.destination({ dest: 1, sync: false });
  let writing = false;
  const waiting: Array<() => void> = [];
  // Emitted each time the last queued write is done; a write that fails ends the wait at the exit
  // bound (exitAfterFlush) instead.
  boom.on('drain', () => {
    writing = false;
    for (const cb of waiting.splice(0)) cb();
  });
  return {
    write(chunk) {
      // A write given to an idle SonicBoom starts at once, one given to a busy one is queued: in both
      // cases it is done only at the next 'drain'.
      writing = true;
      return boom.write(chunk);
    },
    flushSync: () => boom.flushSync(),
    afterWrites(cb) {
      if (writing) waiting.push(cb);
      else cb();
    },
  };
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

  /** pino's logger.flush(cb): everything pending written, in order, before `cb` (the exit paths). */
  flush(cb?: (error?: Error) => void): void {
    this.#push();
    const done = () => {
      this.flushSync();
      cb?.();
    };
    if (this.#sink.afterWrites) this.#sink.afterWrites(done);
    else done();
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
  const sink = options.sink ?? stdoutSink();
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
