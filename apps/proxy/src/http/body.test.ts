// readBody and relayBody on real requests over loopback: what a settled read leaves attached to the
// request, and BODY_LIMIT_BYTES counted over the whole body, however it is cut.

import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ProxyError } from '@batch-proxy/core';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody, relayBody } from './body.js';

let server: Server | undefined;

afterEach(async () => {
  // All connections, not only idle ones: a refused body may still be draining when the test ends.
  server?.closeAllConnections();
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

/**
 * Sends a chunked PUT of `count` writes of `size` bytes to a server that hands each request to
 * `handle`; resolves with what `handle` resolved with. Chunked framing hands the server each write
 * as its own piece (one 'data' event at most), however TCP groups them.
 */
async function sendInChunks<T>(
  count: number,
  size: number,
  handle: (incoming: IncomingMessage) => Promise<T>,
): Promise<T> {
  const seen = new Promise<T>((resolve) => {
    server = createServer((incoming, outgoing) => {
      void handle(incoming).then((result) => {
        resolve(result);
        outgoing.end();
      });
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server?.address() as AddressInfo;
  const req = request({ port, host: '127.0.0.1', method: 'PUT', path: '/' });
  req.on('response', (res) => res.resume());
  req.on('error', () => {}); // the server may answer and close before the upload ends
  for (let i = 0; i < count; i++) req.write('x'.repeat(size));
  req.end();
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

describe('BODY_LIMIT_BYTES over a body sent in many chunks, each under the limit', () => {
  // 40 chunks of 100 bytes against a limit of 1 000: only a count over the whole body refuses it.
  const limit = 1_000;

  it('readBody refuses it with 413', async () => {
    const { result, largest } = await sendInChunks(40, 100, async (incoming) => {
      let largest = 0;
      incoming.on('data', (chunk: Buffer) => {
        largest = Math.max(largest, chunk.length);
      });
      return { result: await readBody(incoming, limit), largest };
    });
    expect(largest).toBeLessThan(limit);
    expect(result).toBeInstanceOf(ProxyError);
    expect(result).toMatchObject({ code: 'PROXY_BODY_TOO_LARGE', status: 413 });
  });

  it('relayBody (a streamed pass-through body) fails the relay with 413', async () => {
    const { error, tooLarge, relayed } = await sendInChunks(40, 100, async (incoming) => {
      const relay = relayBody(incoming, limit);
      let relayed = 0;
      relay.stream.pipe(
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            relayed += chunk.length;
            done();
          },
        }),
      );
      // Settles on the relay's failure, or on its end when nothing stopped the body.
      const error = await finished(relay.stream).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      return { error, tooLarge: relay.tooLarge(), relayed };
    });
    expect(error).toMatchObject({ code: 'PROXY_BODY_TOO_LARGE', status: 413 });
    expect(tooLarge).toBe(true);
    expect(relayed).toBeLessThanOrEqual(limit);
  });
});
