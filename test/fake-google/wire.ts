// Google batching's wire format as the fake reads and writes it, written apart from the proxy's own
// reader (packages/core/src/dialect/multipart.ts) so that one cannot hide the other's mistake: a
// multipart/mixed body read line by line, parts of `application/http` whole requests, answers as
// parts of whole responses (developers.google.com/gmail/api/guides/batch, "Format of a batch request").

/** One part of a batch request: its MIME headers and the HTTP request inside. */
export interface BatchPart {
  /** The part's Content-ID as sent (brackets included), if any. */
  contentId: string | undefined;
  contentType: string | undefined;
  method: string;
  /** The request target as sent: path and query. */
  target: string;
  /** The inner request's own headers, lower-case names. */
  headers: Record<string, string>;
  /** The inner body text ('' when none). */
  body: string;
}

export type ParsedBatch = { ok: true; parts: BatchPart[] } | { ok: false; message: string };

/** The boundary of a `multipart/mixed` Content-Type. */
export function boundaryIn(contentType: string | undefined): string | undefined {
  const match = /^\s*multipart\/mixed\s*;(?:.*;)?\s*boundary=("?)([^";]{1,70})\1\s*(?:;|$)/i.exec(
    contentType ?? '',
  );
  return match?.[2];
}

function headerBlock(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const match = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):\s*(.*?)\s*$/.exec(line);
    if (match) headers[(match[1] as string).toLowerCase()] = match[2] as string;
  }
  return headers;
}

/** Lines up to the first empty one, and the text after it. */
function untilBlank(lines: readonly string[]): { head: string[]; rest: string[] } {
  const blank = lines.indexOf('');
  return blank === -1
    ? { head: [...lines], rest: [] }
    : { head: lines.slice(0, blank), rest: lines.slice(blank + 1) };
}

/** A batch body: every problem here fails the whole batch (400), as Google's front end does. */
export function parseBatchBody(body: string, boundary: string): ParsedBatch {
  const delimiter = `--${boundary}`;
  const parts: string[][] = [];
  let current: string[] | undefined;
  let closed = false;
  for (const line of body.split(/\r?\n/)) {
    const bare = line.replace(/[ \t]+$/, '');
    if (bare === delimiter || bare === `${delimiter}--`) {
      if (current) parts.push(current);
      current = [];
      if (bare !== delimiter) {
        closed = true;
        break;
      }
    } else current?.push(line);
  }
  if (!closed) return { ok: false, message: 'Failed to parse batch request: no closing boundary.' };
  if (parts.length === 0) return { ok: false, message: 'Failed to parse batch request: no parts.' };
  const out: BatchPart[] = [];
  for (const lines of parts) {
    const mime = untilBlank(lines);
    const partHeaders = headerBlock(mime.head);
    const http = untilBlank(mime.rest);
    const start = /^([A-Z]+) (\/\S*) HTTP\/1\.1$/.exec(http.head[0] ?? '');
    if (!start)
      return { ok: false, message: `Failed to parse batch request: bad request line "${http.head[0]}".` };
    out.push({
      contentId: partHeaders['content-id'],
      contentType: partHeaders['content-type'],
      method: start[1] as string,
      target: start[2] as string,
      headers: headerBlock(http.head.slice(1)),
      body: http.rest.join('\r\n'),
    });
  }
  return { ok: true, parts: out };
}

/** One inner answer. */
export interface PartAnswer {
  contentId: string | undefined;
  status: number;
  headers: Record<string, string>;
  /** JSON (undefined: no body) or text as it is. */
  body: unknown;
  /** Fault: a status line that is not HTTP/1.1's. */
  badStatusLine?: boolean;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  404: 'Not Found',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
};

/** The 200 answer's body: `response-` before each Content-ID, a part without one answered without. */
export function encodeAnswer(answers: readonly PartAnswer[], boundary: string): string {
  const parts = answers.map((a) => {
    const text = a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
    const id =
      a.contentId === undefined ? '' : `Content-ID: <response-${a.contentId.replace(/^<|>$/g, '')}>\r\n`;
    const status = a.badStatusLine
      ? `HTTP/9 ${a.status}`
      : `HTTP/1.1 ${a.status} ${REASONS[a.status] ?? 'Status'}`;
    const headers = Object.entries({
      ...(text === '' ? {} : { 'Content-Type': 'application/json; charset=UTF-8' }),
      ...a.headers,
    }).map(([k, v]) => `${k}: ${v}\r\n`);
    return `--${boundary}\r\nContent-Type: application/http\r\n${id}\r\n${status}\r\n${headers.join('')}\r\n${text}\r\n`;
  });
  return `${parts.join('')}--${boundary}--\r\n`;
}
