// Raw HTTP/1.1 over node:net for tests that must send what fetch and undici would refuse or normalise:
// absolute-form targets, foreign Host headers, hop-by-hop headers, malformed framing, slow clients.

import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers keep every value. */
  headers: Record<string, string[]>;
  body: Buffer;
}

export interface Exchange {
  /** Everything the server sent before it closed the connection (or the timeout). */
  data: Buffer;
  /** The server closed the connection (rather than the timeout). */
  closed: boolean;
  /** A socket error such as ECONNRESET, if any. */
  error?: string;
  ms: number;
}

export interface ExchangeOptions {
  /** Give up (and destroy the socket) after this long; default 5 s. */
  timeoutMs?: number;
  /**
   * Half-close this long after writing, so a server still waiting for an incomplete request sees
   * its end (Node's server then aborts the request). Default: never; send `Connection: close`.
   */
  endAfterMs?: number;
}

/** Sends `request` on a fresh connection and collects the bytes until the server closes it. */
export function exchange(
  base: string,
  request: string | Buffer,
  options: ExchangeOptions = {},
): Promise<Exchange> {
  const url = new URL(base);
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let settled = false;
    let endTimer: NodeJS.Timeout | undefined;
    const socket = connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true });
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(endTimer);
      socket.destroy();
      resolve({
        data: Buffer.concat(chunks),
        closed,
        ...(error === undefined ? {} : { error }),
        ms: performance.now() - started,
      });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    // With allowHalfOpen the server's FIN arrives as 'end'; it will not send more.
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      socket.write(request);
      const { endAfterMs } = options;
      if (endAfterMs !== undefined) endTimer = setTimeout(() => socket.end(), endAfterMs);
    });
  });
}

/** Parses the first response in `data` (Content-Length, chunked, or until the end). */
export function parseResponse(data: Buffer): RawResponse | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const lines = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const values = headers[name] ?? [];
    values.push(line.slice(colon + 1).trim());
    headers[name] = values;
  }
  let rest = data.subarray(headEnd + 4);
  let body: Buffer;
  if (headers['transfer-encoding']?.some((v) => v.toLowerCase().includes('chunked'))) {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = rest.indexOf('\r\n');
      if (eol === -1) break;
      const size = Number.parseInt(rest.subarray(0, eol).toString('latin1'), 16);
      if (!Number.isFinite(size) || size === 0) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length']) {
    body = rest.subarray(0, Number(headers['content-length'][0]));
  } else {
    body = rest;
  }
  return { status: Number(m[1]), headers, body };
}

/** One request line plus headers (CRLF), then the body. */
export function buildRequest(
  method: string,
  target: string,
  headers: Array<[string, string]>,
  body: string | Buffer = '',
): Buffer {
  const head = `${method} ${target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
}

/** The one value of a header, or undefined (repeated values joined with ", "). */
export function header(res: RawResponse, name: string): string | undefined {
  return res.headers[name.toLowerCase()]?.join(', ');
}
