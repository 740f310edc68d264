// Starts the data and admin listeners and runs the graceful shutdown (SPEC §8: SIGTERM row).

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import type { Hono } from 'hono';

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
}

// biome-ignore lint/suspicious/noExplicitAny: Hono's env type parameter varies per app
export function listen(app: Hono<any>, options: ListenOptions): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const headersTimeout = options.headersTimeoutMs ?? 10_000;
    const requestTimeout = options.requestTimeoutMs ?? 30_000;
    const server: ServerType = serve(
      {
        fetch: app.fetch,
        port: options.port,
        hostname: options.host,
        // Node enforces the two timeouts only as often as it checks (every 30 s by default).
        serverOptions: {
          connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 4))),
          headersTimeout,
          requestTimeout,
          keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
        },
      },
      (info: AddressInfo) => {
        resolve({ server: server as Server, port: info.port });
      },
    );
    const http = server as Server;
    http.once('error', reject);
  });
}

export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
