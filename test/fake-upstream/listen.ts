// Starting and stopping a fake's HTTP server, shared by the TalkJS and Graph fakes.
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Timers } from './timers.js';

export interface Listening {
  readonly url: string;
  /** Stops listening, cancels held answers and drops every connection. */
  close(): Promise<void>;
}

export async function listen(
  onRequest: RequestListener,
  timers: Timers,
  where: { port?: number | undefined; host?: string | undefined },
): Promise<Listening> {
  const server = createServer({ noDelay: true }, onRequest);
  // Longer than any client's idle timeout, so clients never reuse a socket the fake is closing.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port ?? 0, where.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        timers.cancelAll();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
