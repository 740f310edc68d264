// The process around the proxy (SPEC §8c, docs/architecture.md "Process fault policy"): start-up
// mistakes exit 2 with one line, an unexpected fault is logged as `fatal` and exits 1, and SIGTERM or
// SIGINT drain every accepted call before exit 0. Nothing else ends the process.

import { writeSync } from 'node:fs';
import type { Server } from 'node:http';
import { ProxyError, type Scheduler } from '@batch-proxy/core';
import type { Logger } from 'pino';
import type { CallTracker } from '../http/calls.js';
import type { ConfigError } from './config.js';
import { close } from './server.js';

/** Exit codes: 0 after a drain, 1 after an unexpected fault, 2 for a start-up mistake. */
export const EXIT = { ok: 0, fault: 1, config: 2 } as const;

/** Prints a start-up mistake as one line per problem on stderr, synchronously, and exits 2. */
export function exitOnStartupMistake(error: ConfigError): never {
  writeSync(2, `${error.message}\n`);
  process.exit(EXIT.config);
}

/** Flushes the logger's buffered lines, then exits: the last lines (`stopped`, `fatal`) are not lost. */
export function exitAfterFlush(logger: Logger, code: number): void {
  process.exitCode = code;
  let done = false;
  const exit = () => {
    if (done) return;
    done = true;
    process.exit(code);
  };
  // A destination that cannot flush (a closed pipe) must not keep a dying process alive.
  setTimeout(exit, 1_000).unref();
  try {
    logger.flush(() => exit());
  } catch {
    exit();
  }
}

/**
 * An error or rejection nobody handled means the process is in a state no code planned for: log it
 * once as `fatal` and exit 1, so the orchestrator restarts a clean replica. Returns the same handler,
 * for faults caught elsewhere (a start-up step that failed unexpectedly).
 */
export function installFaultHandlers(logger: Logger): (kind: string, error: unknown) => void {
  let faulted = false;
  const fatal = (kind: string, error: unknown) => {
    if (faulted) return;
    faulted = true;
    logger.fatal({ err: error }, `${kind}: exiting`);
    exitAfterFlush(logger, EXIT.fault);
  };
  process.on('uncaughtException', (error) => fatal('uncaught exception', error));
  process.on('unhandledRejection', (error) => fatal('unhandled rejection', error));
  return fatal;
}

/** Runs `shutdown` once on the first SIGTERM or SIGINT; a second signal does not cut a drain short. */
export function onStopSignals(shutdown: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void shutdown(signal);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

/** Resolves after `ms` or when `done` settles, whichever is first; never rejects. */
export function bounded(done: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    done.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

export interface DrainParts {
  readonly logger: Logger;
  readonly graceMs: number;
  /** New calls get 503 + Connection: close from now on, and /readyz says draining. */
  stopAccepting(): void;
  readonly engine: Pick<Scheduler, 'drain' | 'abandon' | 'pending'>;
  readonly calls: CallTracker;
  readonly data: Server;
  readonly admin: Server;
  /** Synchronous releases (watchers, timers). */
  readonly release: ReadonlyArray<() => void>;
  /** Closes of connections and exporters, bounded together. */
  readonly shutdown: ReadonlyArray<() => Promise<unknown> | undefined>;
}

/**
 * The SIGTERM sequence (SPEC §8): every accepted call is answered — queued ops flushed, admitted
 * pass-through and client-batch calls finished — within the grace period, after which what is left is
 * answered 503 (queued) or cut (pass-through); then everything closes and the process exits 0.
 */
export async function drain(signal: NodeJS.Signals, parts: DrainParts): Promise<void> {
  const { logger, engine, calls, graceMs } = parts;
  parts.stopAccepting();
  logger.info({ signal, pending: engine.pending, calls: calls.count }, 'draining');
  const graceEnds = performance.now() + graceMs;
  await bounded(Promise.all([engine.drain(), calls.idle()]), graceMs);
  if (engine.pending > 0) {
    engine.abandon(
      new ProxyError('PROXY_DRAINING', 'the proxy shut down before this call could be sent', {
        retryAfterSec: 1,
      }),
    );
  }
  const flushMs = Math.max(100, Math.min(1_000, graceMs / 10));
  // Answers given at the end of the grace period still need a moment to be written.
  await bounded(calls.idle(), Math.max(flushMs, graceEnds - performance.now()));
  if (calls.count > 0) logger.warn({ calls: calls.count }, 'grace period over: cutting the calls still open');
  await close(parts.data, flushMs);
  for (const release of parts.release) release();
  // Calls abandoned at the end of the grace period may still hang upstream: cut them.
  await bounded(Promise.allSettled(parts.shutdown.map((stop) => stop())), 250);
  await close(parts.admin, 100);
  logger.info('stopped');
  exitAfterFlush(logger, EXIT.ok);
}
