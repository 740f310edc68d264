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
    const server: ServerType = serve(
      { fetch: app.fetch, port: options.port, hostname: options.host },
      (info: AddressInfo) => {
        resolve({ server: server as Server, port: info.port });
      },
    );
    const http = server as Server;
    http.headersTimeout = options.headersTimeoutMs ?? 10_000;
    http.requestTimeout = options.requestTimeoutMs ?? 30_000;
    http.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
    http.once('error', reject);
  });
}

export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
