// Free TCP ports on loopback for the processes a test starts.

import { createServer } from 'node:net';

/**
 * Ports already handed out by this process. The OS may give the same ephemeral port to two
 * `listen(0)` calls in a row once the first is closed, so two `freePort()` calls for one process
 * (PORT and ADMIN_PORT) could collide: a port is never handed out twice here.
 */
const handedOut = new Set<number>();
const MAX_TRIES = 50;

function probe(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

/** A port that was free a moment ago (the OS picks it) and not handed out before; bind it soon. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const port = await probe(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port not handed out before after ${MAX_TRIES} tries`);
}
