// The fake's resources: any `/{api}/{version}/…` path is a JSON document with an ETag, the way
// Google's REST APIs behave for the calls the proxy carries (insert by POST on a collection, get,
// update, patch, delete, ETag preconditions), errors in Google's JSON error format.

export interface Result {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

const STATUS_NAMES: Record<number, [string, string]> = {
  400: ['INVALID_ARGUMENT', 'badRequest'],
  404: ['NOT_FOUND', 'notFound'],
  412: ['FAILED_PRECONDITION', 'conditionNotMet'],
  429: ['RESOURCE_EXHAUSTED', 'rateLimitExceeded'],
  500: ['INTERNAL', 'backendError'],
  503: ['UNAVAILABLE', 'backendError'],
};

/** Google's error body: `{ error: { code, message, errors: [{ reason }], status } }`. */
export function googleError(code: number, message: string, headers: Record<string, string> = {}): Result {
  const [status, reason] = STATUS_NAMES[code] ?? ['UNKNOWN', 'unknown'];
  return {
    status: code,
    headers,
    body: { error: { code, message, errors: [{ message, domain: 'global', reason }], status } },
  };
}

interface Doc {
  etag: string;
  body: Record<string, unknown>;
}

export interface Call {
  method: string;
  /** Path without the query, `me` already resolved to the caller's user. */
  path: string;
  headers: Record<string, string>;
  body: string;
}

export class Store {
  readonly #docs = new Map<string, Doc>();
  #ids = 0;
  #etags = 0;

  reset(): void {
    this.#docs.clear();
    this.#ids = 0;
    this.#etags = 0;
  }

  #save(path: string, body: Record<string, unknown>): Result {
    const etag = `"e${++this.#etags}"`;
    this.#docs.set(path, { etag, body });
    return { status: 200, headers: { ETag: etag }, body };
  }

  execute(call: Call): Result {
    let input: Record<string, unknown> = {};
    if (call.body !== '') {
      try {
        const parsed: unknown = JSON.parse(call.body);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          return googleError(400, 'Invalid JSON payload: an object is required.');
        input = parsed as Record<string, unknown>;
      } catch {
        return googleError(400, 'Invalid JSON payload received.');
      }
    }
    const doc = this.#docs.get(call.path);
    if (call.method === 'POST') {
      const id = `id${++this.#ids}`;
      return this.#save(`${call.path}/${id}`, { ...input, id });
    }
    if (call.method === 'GET') {
      if (doc) {
        if (call.headers['if-none-match'] === doc.etag)
          return { status: 304, headers: { ETag: doc.etag }, body: undefined };
        return { status: 200, headers: { ETag: doc.etag }, body: doc.body };
      }
      const items = [...this.#docs.entries()]
        .filter(([p]) => p.startsWith(`${call.path}/`) && !p.slice(call.path.length + 1).includes('/'))
        .map(([, d]) => d.body);
      if (items.length > 0) return { status: 200, headers: {}, body: { items } };
      return googleError(404, 'Requested entity was not found.');
    }
    if (!doc) return googleError(404, 'Requested entity was not found.');
    const ifMatch = call.headers['if-match'];
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== doc.etag)
      return googleError(412, 'Precondition Failed');
    if (call.method === 'DELETE') {
      this.#docs.delete(call.path);
      return { status: 204, headers: {}, body: undefined };
    }
    const id = doc.body.id;
    return this.#save(call.path, call.method === 'PATCH' ? { ...doc.body, ...input, id } : { ...input, id });
  }
}
