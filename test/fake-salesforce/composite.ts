// The payload rules of Salesforce's Composite resource (`POST /services/data/vXX.X/composite`), as a
// pure parser: what makes the whole call a 400 before any subrequest runs.
//
// Sources (developer.salesforce.com, REST API Developer Guide):
// - "Send Multiple Requests Using Composite" (resources_composite_composite_post): "The entire series
//   of requests counts as a single call toward your API limits"; up to 25 subrequests in one call, up
//   to 5 of them query operations (Query, QueryAll, "Query More") or sObject Collections.
// - "Composite Request Body" (requests_composite): `allOrNone` (optional boolean), `collateSubrequests`
//   (optional, default true from v49.0: "the order of execution is not guaranteed"), `compositeRequest`
//   (required); a subrequest has `method` (POST, PUT, PATCH, GET, DELETE, case-sensitive, required),
//   `url` (required), `referenceId` (required), optional `body` and `httpHeaders`; `httpHeaders` must
//   not name Accept, Authorization or Content-Type: "If you do, the top-level request fails and returns
//   an HTTP 400 response."
// - "Composite Subrequest Result": "The referenceIds must not contain anything besides letters,
//   numbers, and underscores"; each result carries its `referenceId` "to easily associate subrequests
//   with their results".
// - Salesforce blog "Handle Errors with Composite Resources" (2017): a request-body format error, such as
//   a missing referenceId, is a 400 "without processing any of the subrequests".
// The docs give no errorCode for these 400s; the fake uses JSON_PARSER_ERROR for a malformed body and
// LIMIT_EXCEEDED for the counts, in Salesforce's error shape `[{ message, errorCode }]`.

/** Documented: at most 25 subrequests per composite call. */
export const MAX_SUBREQUESTS = 25;
/** Documented: at most 5 of them query operations or sObject Collections. */
export const MAX_QUERY_SUBREQUESTS = 5;

const METHODS = new Set(['POST', 'PUT', 'PATCH', 'GET', 'DELETE']);
const INHERITED_HEADERS = new Set(['accept', 'authorization', 'content-type']);
const REFERENCE_ID = /^[A-Za-z0-9_]+$/;

export interface Subrequest {
  index: number;
  method: string;
  url: string;
  referenceId: string;
  httpHeaders: Record<string, string>;
  /** Undefined when the subrequest had no `body` member. */
  body: unknown;
}

export interface Composite {
  allOrNone: boolean;
  collateSubrequests: boolean;
  subrequests: Subrequest[];
}

export type ParsedComposite =
  | { ok: true; composite: Composite }
  | { ok: false; errorCode: 'JSON_PARSER_ERROR' | 'LIMIT_EXCEEDED'; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Query, QueryAll and Query More (`/query/{locator}`), and sObject Collections, share the limit of 5. */
export function isQueryKind(url: string): boolean {
  const path = url.split('?')[0] ?? '';
  return /^\/services\/data\/v\d+\.\d+\/(query|queryAll|composite\/sobjects)(\/|$)/.test(path);
}

const malformed = (message: string): ParsedComposite => ({
  ok: false,
  errorCode: 'JSON_PARSER_ERROR',
  message,
});

/** Validates a decoded composite body. Every problem here fails the whole call (400). */
export function parseComposite(payload: unknown): ParsedComposite {
  if (!isObject(payload) || !Array.isArray(payload.compositeRequest)) {
    return malformed('Required field is missing: compositeRequest');
  }
  for (const flag of ['allOrNone', 'collateSubrequests'] as const) {
    if (payload[flag] !== undefined && typeof payload[flag] !== 'boolean') {
      return malformed(`Cannot deserialize value of type boolean for field ${flag}`);
    }
  }
  const raw = payload.compositeRequest as unknown[];
  if (raw.length === 0) return malformed('compositeRequest must contain at least one subrequest');
  if (raw.length > MAX_SUBREQUESTS) {
    return {
      ok: false,
      errorCode: 'LIMIT_EXCEEDED',
      message: `A composite request can have at most ${MAX_SUBREQUESTS} subrequests; it had ${raw.length}.`,
    };
  }
  const subrequests: Subrequest[] = [];
  const seen = new Set<string>();
  for (const [index, r] of raw.entries()) {
    if (!isObject(r)) return malformed(`Subrequest ${index} is not an object`);
    const { method, url, referenceId, httpHeaders = {} } = r;
    if (typeof referenceId !== 'string') return malformed('Required field is missing: referenceId');
    if (!REFERENCE_ID.test(referenceId)) {
      return malformed(`Invalid referenceId '${referenceId}': only letters, numbers and underscores`);
    }
    if (seen.has(referenceId)) return malformed(`Duplicate referenceId '${referenceId}'`);
    seen.add(referenceId);
    if (typeof method !== 'string' || !METHODS.has(method)) {
      return malformed(`Invalid method for subrequest '${referenceId}': ${String(method)}`);
    }
    if (typeof url !== 'string' || url === '') return malformed('Required field is missing: url');
    if (!isObject(httpHeaders) || !Object.values(httpHeaders).every((v) => typeof v === 'string')) {
      return malformed(`Invalid httpHeaders for subrequest '${referenceId}'`);
    }
    const inherited = Object.keys(httpHeaders).find((k) => INHERITED_HEADERS.has(k.toLowerCase()));
    if (inherited !== undefined) {
      return malformed(`Subrequest '${referenceId}' may not set the ${inherited} header`);
    }
    subrequests.push({
      index,
      method,
      url,
      referenceId,
      httpHeaders: httpHeaders as Record<string, string>,
      body: Object.hasOwn(r, 'body') ? r.body : undefined,
    });
  }
  const queries = subrequests.filter((s) => isQueryKind(s.url)).length;
  if (queries > MAX_QUERY_SUBREQUESTS) {
    return {
      ok: false,
      errorCode: 'LIMIT_EXCEEDED',
      message: `A composite request can have at most ${MAX_QUERY_SUBREQUESTS} query or sObject Collections subrequests; it had ${queries}.`,
    };
  }
  return {
    ok: true,
    composite: {
      allOrNone: payload.allOrNone === true,
      collateSubrequests: payload.collateSubrequests !== false,
      subrequests,
    },
  };
}

const REFERENCE = /@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}/g;

/** The referenceIds a subrequest's url or body refers to (`@{ref.field}`) among `known`. */
export function referencesOf(s: Subrequest, known: ReadonlySet<string>): string[] {
  const text = `${s.url} ${s.body === undefined ? '' : JSON.stringify(s.body)}`;
  return [...text.matchAll(REFERENCE)].map((m) => m[1] as string).filter((id) => known.has(id));
}

/** Follows `.field` and `[n]` steps into a result body. */
function follow(value: unknown, steps: string): unknown {
  let at = value;
  for (const m of steps.matchAll(/\.([A-Za-z0-9_]+)|\[(\d+)\]/g)) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[m[1] ?? (m[2] as string)];
  }
  return at;
}

/**
 * Replaces `@{ref.path}` with the value in an earlier result's body (documented "JavaScript-like
 * reference notation"). A reference to a name that is no referenceId of this call stays as text.
 */
export function resolveReferences(text: string, bodies: ReadonlyMap<string, unknown>): string {
  return text.replace(REFERENCE, (whole, id: string, steps: string) => {
    if (!bodies.has(id)) return whole;
    const v = follow(bodies.get(id), steps);
    return v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

/** resolveReferences on every string inside a JSON body. */
export function resolveInBody(body: unknown, bodies: ReadonlyMap<string, unknown>): unknown {
  if (typeof body === 'string') return resolveReferences(body, bodies);
  if (Array.isArray(body)) return body.map((v) => resolveInBody(v, bodies));
  if (isObject(body)) {
    return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, resolveInBody(v, bodies)]));
  }
  return body;
}
