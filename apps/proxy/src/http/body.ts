// Request bodies at the edge (SPEC §8, §8c): read whole for batchable calls, relayed and counted for
// pass-through calls, BODY_LIMIT_BYTES enforced on both, and what is refused drained so the 413 reaches
// a client that is still sending.

import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { ProxyError } from '@batch-proxy/core';

export interface BodyRelay {
  readonly stream: Transform;
  /** Whether the body passed the limit (the relay then failed, and with it the upstream call). */
  tooLarge(): boolean;
}

/**
 * The caller's body, relayed to the upstream and counted. undici destroys a request body it stops
 * reading (an upstream that answers before the upload ends): the relay takes that, so the caller's
 * own stream survives and is drained (up to a bound), keeping its connection.
 */
export function relayBody(incoming: IncomingMessage, limit: number): BodyRelay {
  let size = 0;
  let over = false;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > limit) {
        over = true;
        done(bodyTooLarge(limit));
        return;
      }
      done(null, chunk);
    },
  });
  incoming.pipe(stream);
  stream.on('close', () => {
    if (!incoming.readableEnded) {
      incoming.unpipe(stream);
      discardRest(incoming, limit);
    }
  });
  return { stream, tooLarge: () => over };
}

export const bodyTooLarge = (limit: number) =>
  new ProxyError('PROXY_BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`);

/** Reads and drops what is left of a body, up to a bound past which the connection is cut. */
function discardRest(incoming: IncomingMessage, limit: number): void {
  const bound = Math.max(limit * 4, 8 * 1024 * 1024);
  let dropped = 0;
  incoming.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > bound) incoming.destroy();
  });
  incoming.resume();
}

/**
 * Reads the whole body, refusing more than `limit` bytes (413) without buffering past it. The rest of
 * a refused body is read and dropped (up to a bound), so the 413 reaches a client that is still
 * sending instead of a reset, and the connection stays usable.
 */
export function readBody(incoming: IncomingMessage, limit: number): Promise<Buffer | ProxyError> {
  const tooLarge = () => bodyTooLarge(limit);
  const declared = Number(incoming.headers['content-length']);
  const discardBound = Math.max(limit * 4, 8 * 1024 * 1024);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = Number.isFinite(declared) && declared > limit;
    if (refused && declared > discardBound) {
      incoming.destroy();
      resolve(tooLarge());
      return;
    }
    // Once settled the listeners go: a queued call's request lives until its answer, and would keep
    // them (and what they hold) all that time.
    const settle = (result: Buffer | ProxyError) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      // An error after the end must still find a listener (none would crash the process).
      incoming.off('error', onError).on('error', ignoreLateError);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (!refused && size > limit) refused = true;
      if (refused) {
        chunks.length = 0;
        if (size > discardBound) {
          incoming.destroy();
          settle(tooLarge());
        }
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (refused) settle(tooLarge());
      else settle(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = () => settle(new ProxyError('PROXY_CLIENT_CLOSED', 'the caller went away'));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

const ignoreLateError = () => {};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as JSON text when it is valid UTF-8 JSON; undefined otherwise. */
export function decodeJson(body: Buffer): string | undefined {
  try {
    const text = utf8.decode(body);
    JSON.parse(text);
    return text;
  } catch {
    return undefined;
  }
}
