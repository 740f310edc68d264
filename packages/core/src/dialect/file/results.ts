// Reading a batch answer the way a dialect file says (docs/dialect-file.md "Results"): the list at a
// JSON pointer, each result matched to its op by id or position, its status, headers and body at
// pointers; the split-back rule itself is envelope.ts's `splitResults`, shared by every dialect.

import type { OpResult } from '../dialect.js';
import { splitResults } from '../envelope.js';
import { relayableHeaders } from '../headers.js';
import type { DialectFile } from './schema.js';

/** RFC 6901: the value at `pointer` in `doc`, or undefined. */
export function atPointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let here: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(here)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      here = here[Number(token)];
    } else if (typeof here === 'object' && here !== null && Object.hasOwn(here, token)) {
      here = (here as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return here;
}

/** How an op's id is written: a number, or a string with a prefix. */
export interface IdForm {
  readonly type: 'number' | 'string';
  readonly prefix: string;
}

/** The sequence number an id names, or undefined when it is none of the proxy's. */
export function seqOfId(id: unknown, form: IdForm): number | undefined {
  if (form.type === 'number') return typeof id === 'number' ? id : undefined;
  if (typeof id !== 'string' || !id.startsWith(form.prefix)) return undefined;
  const digits = id.slice(form.prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(digits) ? Number(digits) : undefined;
}

/** A result's headers object, or none when what is there is not an object. */
function headersAt(entry: unknown, pointer: string | undefined): Record<string, string> {
  const value = pointer === undefined ? undefined : atPointer(entry, pointer);
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? relayableHeaders(value as Record<string, unknown>)
    : {};
}

/** One result per op, from a batch answer's decoded body. */
export function readResults(
  spec: DialectFile,
  idForm: IdForm | undefined,
  body: unknown,
  count: number,
): OpResult[] {
  const { results: r } = spec;
  const list = atPointer(body, r.at);
  if (!Array.isArray(list)) {
    return Array.from({ length: count }, () => ({
      ok: false,
      reason: 'the batch response has no list of results',
    }));
  }
  const entries = list.map((entry: unknown, position) => {
    if (typeof entry !== 'object' || entry === null) return undefined;
    const seq =
      r.match.by === 'position' ? position : seqOfId(atPointer(entry, r.match.at), idForm as IdForm);
    if (seq === undefined) return undefined;
    const headers = headersAt(entry, r.headers);
    return { seq, status: atPointer(entry, r.status), opBody: atPointer(entry, r.body), headers };
  });
  const again = spec.again;
  return splitResults(entries, count, ({ opBody, headers }, status): OpResult => {
    if (again?.status.includes(status)) {
      // relayableHeaders wrote the names in lower case.
      const retryAfter = headers[again.retryAfterHeader];
      return { ok: 'again', why: status === 429 ? '429' : '424', retryAfter };
    }
    const body = opBody === undefined ? r.emptyBody : opBody;
    return spec.headers.relay ? { ok: true, status, body, headers } : { ok: true, status, body };
  });
}
