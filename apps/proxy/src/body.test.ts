// readBody on real requests over loopback: what a settled read leaves attached to the request.

import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody } from './body.js';

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Sends one PUT with `body`; resolves with the request as the server saw it, after readBody settled. */
async function readOne(body: string, limit: number) {
  const seen = new Promise<{ incoming: IncomingMessage; result: Buffer | Error }>((resolve) => {
    server = createServer((incoming, outgoing) => {
      void readBody(incoming, limit).then((result) => {
        resolve({ incoming, result });
        outgoing.end();
      });
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server?.address() as AddressInfo;
  const req = request({ port, host: '127.0.0.1', method: 'PUT', path: '/' });
  req.on('response', (res) => res.resume());
  req.end(body);
  return seen;
}

describe('readBody', () => {
  it('leaves no listener of its own on the request once the body is read (a held call keeps none)', async () => {
    const { incoming, result } = await readOne('{"name":"a"}', 1024);
    expect(result).toEqual(Buffer.from('{"name":"a"}'));
    expect(incoming.listenerCount('data')).toBe(0);
    expect(incoming.listenerCount('end')).toBe(0);
    // One listener still takes a late error, so none can crash the process.
    expect(incoming.listenerCount('error')).toBe(1);
  });

  it('leaves none either when it refuses a body over the limit', async () => {
    const { incoming, result } = await readOne('x'.repeat(2048), 1024);
    expect(result).toMatchObject({ code: 'PROXY_BODY_TOO_LARGE' });
    expect(incoming.listenerCount('data')).toBe(0);
    expect(incoming.listenerCount('end')).toBe(0);
  });
});
