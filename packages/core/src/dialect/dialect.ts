// The seam between the engine and one upstream batch API: everything that knows the wire format of
// a batch call lives behind this interface, so a second API (e.g. Microsoft Graph `$batch`) is one
// new module.

export const batchableMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type Method = (typeof batchableMethods)[number];

export function isBatchableMethod(method: string): method is Method {
  return (batchableMethods as readonly string[]).includes(method);
}

/** Where a request lands inside the upstream: the app and the path below the app's root. */
export interface AppTarget {
  readonly appId: string;
  /** Relative to the app root and still percent-encoded as received, e.g. `/users/u1`. */
  readonly path: string;
}

/** One caller's call, in the form every dialect can carry. */
export interface OpRequest {
  readonly method: Method;
  readonly path: string;
  /** GET query parameters; always empty for other methods. */
  readonly query: Readonly<Record<string, string>>;
  /** The request body as validated JSON text; undefined when the call had none. */
  readonly body: string | undefined;
  /** The upstream API version the caller asked for, if any. */
  readonly apiVersion: string | undefined;
}

export type OpResult =
  | { readonly ok: true; readonly status: number; readonly body: unknown }
  | { readonly ok: false; readonly reason: string };

/**
 * What a batch call's answer (other than a 429 or a 5xx, which the engine handles alike for every
 * dialect) means for its ops:
 *  - results: one per op, by sequence number;
 *  - refused: the batch's credential was refused (e.g. 401/403): every op gets this answer as is;
 *  - rejected: the upstream refused the batch as a whole and ran none of it (e.g. 400, 413).
 */
export type BatchAnswer =
  | { readonly kind: 'results'; readonly results: OpResult[] }
  | { readonly kind: 'refused'; readonly status: number; readonly body: string }
  | { readonly kind: 'rejected'; readonly status: number; readonly body: string };

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, e.g. `/v1/app/batch`. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
}

export interface OpInput {
  readonly method: Method;
  readonly target: AppTarget;
  readonly query: URLSearchParams;
  readonly body: string | undefined;
  readonly apiVersion: string | undefined;
}

export interface BatchDialect {
  readonly name: string;
  /** The most operations one batch call may carry. */
  readonly maxOps: number;
  /** The request header that selects the API version on a single call (lower case). */
  readonly apiVersionHeader: string;
  /** Splits a request path into app and path below it; undefined when it is not an app resource. */
  parseTarget(pathname: string): AppTarget | undefined;
  /** True for the upstream's own batch endpoint (a client calling it directly is passed through). */
  isBatchEndpoint(target: AppTarget): boolean;
  /** The op for a call, or a reason the call cannot travel inside a batch. */
  toOp(input: OpInput): { op: OpRequest } | { passThrough: string };
  /** The batch call carrying `ops`; op i gets sequence number i. */
  batchRequest(appId: string, ops: readonly OpRequest[]): UpstreamRequest;
  /** The same op sent as an ordinary single call (the single-call lane). */
  singleRequest(appId: string, op: OpRequest): UpstreamRequest;
  /** Maps a batch call's decoded JSON body to one result per op, by sequence number. */
  decodeResults(body: unknown, count: number): OpResult[];
  /** Reads a batch call's answer (status and body text) for `count` ops. */
  readBatchAnswer(status: number, body: string, count: number): BatchAnswer;
}
