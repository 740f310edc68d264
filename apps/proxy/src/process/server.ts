// Starts the data and admin listeners and runs the graceful shutdown (SPEC §8: SIGTERM row).

import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import { ConfigError, DEFAULT_KEEP_ALIVE_TIMEOUT_MS } from './config.js';

export interface Listening {
  readonly server: Server;
  readonly port: number;
}

export interface ListenOptions {
  readonly port: number;
  readonly host: string;
  /** Slowloris guards: the whole head within this, the whole request within `requestTimeoutMs`. */
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
  /**
   * The variables `port` and `host` came from: a port in use (or a host that cannot be bound) then
   * rejects with a ConfigError naming the variable (SPEC §8c) instead of a raw listen error.
   */
  readonly variables?: { readonly port: string; readonly host: string };
}

/** Listens with a Hono app (the admin listener) or a node request listener (the data listener). */
// biome-ignore lint/suspicious/noExplicitAny: Hono's env type parameter varies per app
export function listen(app: Hono<any> | RequestListener, options: ListenOptions): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const headersTimeout = options.headersTimeoutMs ?? 10_000;
    const requestTimeout = options.requestTimeoutMs ?? 30_000;
    const listener =
      typeof app === 'function' ? app : getRequestListener(app.fetch, { hostname: options.host });
    const server = createServer(
      {
        // Node enforces the two timeouts only as often as it checks (every 30 s by default).
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 4))),
        headersTimeout,
        requestTimeout,
        keepAliveTimeout: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      },
      listener,
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => answerClientError(error, socket));
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, options)));
    server.listen(options.port, options.host, () => {
      resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

/** A listen failure as the start-up mistake it is, naming the variable to change. */
function listenError(error: NodeJS.ErrnoException, options: ListenOptions): Error {
  const names = options.variables;
  if (!names) return error;
  const where = `${options.host}:${options.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return ConfigError.of(names.port, `${where} is already in use`);
    case 'EACCES':
      return ConfigError.of(names.port, `${where} may not be bound by this user`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return ConfigError.of(names.host, `${options.host} is not an address of this machine (${error.code})`);
    default:
      return error;
  }
}

/**
 * Stops listening and closes idle connections; connections still busy after `flushMs` (a response
 * being written, a client that keeps its connection) are closed too.
 */
export function close(server: Server, flushMs: number): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), flushMs).unref();
  });
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'PROXY_HEADERS_TOO_LARGE'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'PROXY_REQUEST_TIMEOUT'],
};

/** Node's HTTP parser refused the request: answer with the proxy's JSON error shape, then close. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || error.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  // A malformed follow-up on a keep-alive socket: the answer to the previous (complete) request is
  // still being written. Ours goes after it, never in its place (SPEC §8c: every accepted call gets
  // its answer). An error in the request itself (a body too slow) is answered at once.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (inFlight && !inFlight.writableFinished && inFlight.req.complete) {
    inFlight.once('finish', () => answerClientError(error, socket));
    inFlight.once('close', () => {
      if (!inFlight.writableFinished) socket.destroy();
    });
    return;
  }
  const [status, reason, code] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'Bad Request', 'PROXY_BAD_REQUEST'];
  const body = JSON.stringify({
    error: { code, message: `the request could not be parsed (${error.code ?? 'parse error'})` },
  });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
