// The `$batch` payload rules of Microsoft Graph JSON batching, as a pure parser: what makes the whole
// batch a 400, the dependsOn shapes the service accepts, and the order requests then execute in.
//
// Sources (see docs/graph-dialect.md for the full list):
// - learn.microsoft.com/graph/json-batching (microsoftgraph/microsoft-graph-docs-contrib
//   concepts/json-batching.md): 20 requests at most; `id` required, a string, not case-sensitive,
//   unique in the batch "otherwise, the batch request fails with a 400"; `url` relative to the
//   version; "When a body is included with the request, the headers object must contain a value for
//   Content-Type"; if a request fails, "any request that depends on that request fails with 424".
// - What the service does when a write lacks Content-Type or body: the whole call is a 400
//   `BadRequest` "Write request id : … does not contain Content-Type header or body."
//   (msgraph-sdk-dotnet#2628, 2024; Softeria/ms-365-mcp-server#677 and #683: "a batch-level
//   validation failure, so the outer call 400s and none of the sub-requests run").
// - dependsOn shapes: the SDKs accept parallel, serial (each depends on the previous) or "same" (all
//   depend on one) (msgraph-sdk-javascript BatchRequestContent.validateDependencies); anything else is
//   a 400 "Batch should be either fully sequential or fully parallel."
//   (microsoft-graph-docs-contrib#2339); a dependency must appear earlier in the array, else 400
//   "Invalid dependency for request Id …" (msgraph-sdk-dotnet-core#891, msgraph-sdk-java-core#71).

import { shuffled } from '../fake-upstream/prng.js';

/** Documented: at most 20 requests per batch. */
export const MAX_BATCH_REQUESTS = 20;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
/** Writes must carry a body and a Content-Type (a bodyless POST is refused too: dotnet#2628). */
const WRITES = new Set(['POST', 'PUT', 'PATCH']);

export interface BatchRequest {
  /** Position in the `requests` array. */
  index: number;
  id: string;
  method: string;
  url: string;
  /** As sent (original header-name case). */
  headers: Record<string, string>;
  /** As sent; undefined when the request had no `body` member. */
  body: unknown;
  /** Indexes of the requests this one depends on. */
  dependsOn: number[];
}

export type DependencyShape = 'parallel' | 'serial' | 'same';

export type ParsedBatch =
  | { ok: true; requests: BatchRequest[]; shape: DependencyShape }
  | { ok: false; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Case-insensitive header lookup in a request's `headers` object. */
export function headerOf(headers: Record<string, string>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === want) return v;
  return undefined;
}

const fail = (message: string): ParsedBatch => ({ ok: false, message });

/** Validates a decoded `$batch` body. Every problem here fails the whole batch (400). */
export function parseBatch(payload: unknown): ParsedBatch {
  if (!isObject(payload) || !Array.isArray(payload.requests)) {
    return fail('Invalid batch payload format: a "requests" array is required.');
  }
  const raw = payload.requests as unknown[];
  if (raw.length === 0) return fail('Invalid batch payload format: the batch has no requests.');
  if (raw.length > MAX_BATCH_REQUESTS) {
    return fail(`The number of requests in a batch cannot exceed ${MAX_BATCH_REQUESTS}; got ${raw.length}.`);
  }
  const requests: BatchRequest[] = [];
  const indexById = new Map<string, number>();
  for (const [index, r] of raw.entries()) {
    if (!isObject(r)) return fail(`Invalid batch payload format: request ${index} is not an object.`);
    const { id, method, url, headers = {}, body, dependsOn } = r;
    if (typeof id !== 'string' || id === '') return fail(`Request ${index} needs a non-empty string id.`);
    const key = id.toLowerCase();
    if (indexById.has(key)) return fail(`Request id '${id}' is not unique in the batch.`);
    indexById.set(key, index);
    if (typeof method !== 'string' || !METHODS.has(method.toUpperCase())) {
      return fail(`Request '${id}' has an invalid method.`);
    }
    if (typeof url !== 'string' || url === '') return fail(`Request '${id}' needs a url.`);
    if (!isObject(headers) || !Object.values(headers).every((v) => typeof v === 'string')) {
      return fail(`Request '${id}' has invalid headers: an object of string values is required.`);
    }
    const hasBody = Object.hasOwn(r, 'body');
    const upper = method.toUpperCase();
    const contentType = headerOf(headers as Record<string, string>, 'content-type');
    if (
      (WRITES.has(upper) && (!hasBody || contentType === undefined)) ||
      (hasBody && contentType === undefined)
    ) {
      return fail(`Write request id : ${id} does not contain Content-Type header or body.`);
    }
    let deps: unknown[] = [];
    if (dependsOn !== undefined && dependsOn !== null) {
      if (!Array.isArray(dependsOn) || !dependsOn.every((d) => typeof d === 'string')) {
        return fail(`Request '${id}' has an invalid dependsOn: an array of ids is required.`);
      }
      deps = dependsOn;
    }
    const dependsOnIdx: number[] = [];
    for (const d of deps as string[]) {
      const at = indexById.get(d.toLowerCase());
      // Only earlier requests are known here: a forward, self or unknown reference is refused alike.
      if (at === undefined || at === index) return fail(`Invalid dependency for request Id '${id}'.`);
      dependsOnIdx.push(at);
    }
    requests.push({
      index,
      id,
      method: upper,
      url,
      headers: headers as Record<string, string>,
      body: hasBody ? body : undefined,
      dependsOn: dependsOnIdx,
    });
  }
  const shape = shapeOf(requests);
  if (!shape) return fail('Batch should be either fully sequential or fully parallel.');
  return { ok: true, requests, shape };
}

function shapeOf(requests: BatchRequest[]): DependencyShape | undefined {
  if (requests.every((r) => r.dependsOn.length === 0)) return 'parallel';
  if (requests.every((r, i) => (i === 0 ? r.dependsOn.length === 0 : same(r.dependsOn, [i - 1])))) {
    return 'serial';
  }
  const roots = requests.filter((r) => r.dependsOn.length === 0);
  const root = roots[0];
  if (roots.length === 1 && root && requests.every((r) => r === root || same(r.dependsOn, [root.index]))) {
    return 'same';
  }
  return undefined;
}

function same(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The order the service runs the requests in: any order when parallel (the fake shuffles), the
 * chain for serial, the shared dependency first and then the rest in any order for "same".
 */
export function executionOrder(
  parsed: { requests: BatchRequest[]; shape: DependencyShape },
  random: () => number,
) {
  const { requests, shape } = parsed;
  if (shape === 'serial') return requests.map((r) => r.index);
  if (shape === 'parallel') return shuffled(requests, random).map((r) => r.index);
  const root = requests.find((r) => r.dependsOn.length === 0) as BatchRequest;
  return [
    root.index,
    ...shuffled(
      requests.filter((r) => r !== root),
      random,
    ).map((r) => r.index),
  ];
}
