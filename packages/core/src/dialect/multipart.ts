// multipart/mixed (RFC 2046 §5.1) as Google batching uses it: a fully buffered body split on its
// boundary into parts, each a MIME header block and a nested HTTP message (`application/http`).
// Hand-written rather than a package: the dialect seam is synchronous and the body is already one
// string in memory, while the maintained parsers are streaming and async and stop at the part's
// bytes, leaving the nested HTTP message (the bigger half) to us anyway.

/** The boundary a `multipart/mixed` Content-Type names; undefined for any other type or none. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const [type = '', ...params] = contentType.split(';');
  if (type.trim().toLowerCase() !== 'multipart/mixed') return undefined;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    const raw = param.slice(eq + 1).trim();
    const value = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw;
    // RFC 2046: 1 to 70 characters.
    return value.length >= 1 && value.length <= 70 ? value : undefined;
  }
  return undefined;
}

/** A delimiter ends its line, pads it with blanks, or closes the body (`--`): `--bb` is not `--b`. */
function endsDelimiter(body: string, at: number): boolean {
  const next = body[at];
  return (
    next === undefined ||
    next === '\r' ||
    next === '\n' ||
    next === ' ' ||
    next === '\t' ||
    body.startsWith('--', at)
  );
}

/** Where the next delimiter line starting at or after `from` begins, and where its line break began. */
function nextDelimiter(body: string, delimiter: string, from: number): { at: number; end: number } {
  if (from === 0 && body.startsWith(delimiter) && endsDelimiter(body, delimiter.length))
    return { at: 0, end: 0 };
  for (let at = body.indexOf(`\n${delimiter}`, Math.max(0, from - 1)); at !== -1; ) {
    if (endsDelimiter(body, at + 1 + delimiter.length))
      return { at: at + 1, end: at > 0 && body[at - 1] === '\r' ? at - 1 : at };
    at = body.indexOf(`\n${delimiter}`, at + 1);
  }
  return { at: -1, end: -1 };
}

/**
 * The parts of a multipart body, each as its text (headers, blank line, content); undefined when the
 * body has no delimiter at all. A part not closed by a delimiter (a truncated body) is left out: its
 * content may be cut short.
 */
export function splitParts(body: string, boundary: string): string[] | undefined {
  const delimiter = `--${boundary}`;
  let { at } = nextDelimiter(body, delimiter, 0);
  if (at === -1) return undefined;
  const parts: string[] = [];
  for (;;) {
    const after = at + delimiter.length;
    if (body.startsWith('--', after)) return parts; // the close delimiter
    const eol = body.indexOf('\n', after);
    if (eol === -1) return parts;
    const next = nextDelimiter(body, delimiter, eol + 1);
    if (next.at === -1) return parts;
    parts.push(body.slice(eol + 1, next.end));
    at = next.at;
  }
}

/** A header block and what follows its blank line (the whole text is the head when there is none). */
export function splitHead(text: string): { head: string; rest: string } {
  const crlf = text.indexOf('\r\n\r\n');
  const lf = text.indexOf('\n\n');
  if (crlf !== -1 && (lf === -1 || crlf < lf))
    return { head: text.slice(0, crlf), rest: text.slice(crlf + 4) };
  if (lf !== -1) return { head: text.slice(0, lf), rest: text.slice(lf + 2) };
  return { head: text, rest: '' };
}

/** Header lines as lower-case names; a repeated header is joined with ", " (RFC 9110 §5.3). */
export function readHeaders(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = Object.create(null);
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

function lines(head: string): string[] {
  return head.split(/\r?\n/);
}

/** One part: its MIME headers and its content. */
export interface Part {
  readonly headers: Record<string, string>;
  readonly content: string;
}

export function readPart(text: string): Part {
  const { head, rest } = splitHead(text);
  return { headers: readHeaders(head === '' ? [] : lines(head)), content: rest };
}

/** A nested HTTP response: its status (undefined when the status line is not one), headers and body. */
export interface HttpMessage {
  readonly start: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A nested HTTP message: its start line, headers and body; blank lines before it are skipped. */
export function readHttp(content: string): HttpMessage {
  const { head, rest } = splitHead(content.replace(/^(\r?\n)+/, ''));
  const [start = '', ...fields] = lines(head);
  return { start, headers: readHeaders(fields), body: rest };
}

/** The status of an HTTP/1.x status line (`HTTP/1.1 200 OK`); undefined for anything else. */
export function statusOf(start: string): number | undefined {
  const match = /^HTTP\/1\.[01] ([0-9]{3})(?: .*)?$/.exec(start);
  return match ? Number(match[1]) : undefined;
}
