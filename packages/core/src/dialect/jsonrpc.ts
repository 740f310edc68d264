// The JSON-RPC 2.0 dialect (jsonrpc.org/specification; docs/jsonrpc-dialect.md): a single call is
// `POST {path}` with one request object `{"jsonrpc":"2.0","id":…,"method":…,"params":…}`, a batch is
// an array of them on the same path, answered by an array of response objects in any order, matched
// by id. Errors are per-entry objects (`{"error":{"code":-32601,…}}`) under HTTP 200.
//
// The scope (`AppTarget.appId`) is the endpoint path: one batch goes to one path. Every op of an
// endpoint is one resource for ordering: the proxy cannot tell which state a method touches, and a
// JSON-RPC server may run a batch's entries in any order, so a write is never in a batch with another
// op of its endpoint and waits for the ops before it (conservative; docs/jsonrpc-dialect.md §2).
//
// Callers' ids collide (many clients count from 1), so the proxy numbers the entries 0..n-1 itself,
// splicing each caller's request as received with only its id replaced, and puts the caller's own id
// back into its answer from the op (`BatchContext.ops`).

import type {
  AppTarget,
  BatchAnswer,
  BatchContext,
  BatchDialect,
  OpInput,
  OpRefusal,
  OpRequest,
  OpResult,
  UpstreamRequest,
} from './dialect.js';
import { readBatchEnvelope, splitResults } from './envelope.js';
import { isCommonlyDroppable } from './headers.js';
import { memberSpans } from './json-members.js';

/**
 * JSON-RPC sets no batch limit; servers do (geth 1000 by default, others and hosted providers often
 * 100 or less). 100 is a size most accept; BATCH_MAX_OPS lowers it (not verified per server).
 */
export const JSONRPC_MAX_OPS = 100;

export interface JsonRpcOptions {
  /**
   * Globs (`*` any run of characters, `?` one) naming the methods that change state: ordered, never
   * collapsed, never sent twice. Any other method is a read, resent after a 5xx or a reset.
   */
  readonly writeMethods?: readonly string[];
  /** The most entries one batch carries; default JSONRPC_MAX_OPS. */
  readonly maxOps?: number;
}

/** A glob as an anchored regular expression; method names are case-sensitive in JSON-RPC. */
export function globPattern(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** JSON-RPC_WRITE_METHODS as globs: comma-separated, blanks ignored. */
export function parseMethodGlobs(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((glob) => glob.trim())
    .filter((glob) => glob !== '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const refuse = (reason: OpRefusal['reason'], passThrough: string): OpRefusal => ({ passThrough, reason });

/**
 * A caller's id the proxy can give back exactly: a string, or a number JSON reads without loss (an
 * integer up to 2^53). `null` expects no matched answer, and a fraction SHOULD NOT be used (§4).
 */
function isGivableId(id: unknown): id is string | number {
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id));
}

/** A caller's request text with its id member's value replaced by the proxy's sequence number. */
function withSequence(body: string, seq: number): string {
  const id = memberSpans(body)?.find((member) => member.name === 'id');
  // toOp checked that the op has exactly one id member.
  if (!id) return body;
  return `${body.slice(0, id.start)}${seq}${body.slice(id.end)}`;
}

/** The body as JSON; undefined when it is not (the edge refuses such bodies before toOp). */
function parsed(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/** The caller's own id, read back from the op it sent. */
function callerId(op: OpRequest | undefined): unknown {
  if (op?.body === undefined) return undefined;
  return (JSON.parse(op.body) as { id?: unknown }).id;
}

/**
 * A response object as JSON-RPC §5 defines it: `jsonrpc: "2.0"` and exactly one of `result` or
 * `error`, an error having an integer `code` and a string `message`.
 */
function isResponse(entry: Record<string, unknown>): boolean {
  if (entry.jsonrpc !== '2.0') return false;
  const hasResult = Object.hasOwn(entry, 'result');
  const hasError = Object.hasOwn(entry, 'error');
  if (hasResult === hasError) return false;
  if (hasResult) return true;
  const error = entry.error;
  return isObject(error) && Number.isInteger(error.code) && typeof error.message === 'string';
}

export function jsonrpcDialect(options: JsonRpcOptions = {}): BatchDialect {
  const writes = (options.writeMethods ?? []).map(globPattern);
  const isWrite = (method: string) => writes.some((pattern) => pattern.test(method));

  const dialect: BatchDialect = {
    name: 'jsonrpc',
    maxOps: options.maxOps ?? JSONRPC_MAX_OPS,
    // Hosted JSON-RPC providers count each entry of a batch as a request (or its compute units).
    cost: 'op',
    apiVersionHeader: '',

    // An entry carries no headers: what every dialect may drop is dropped, anything else passes.
    requestHeader(name: string) {
      return isCommonlyDroppable(name) ? 'drop' : 'pass';
    },

    // A batched answer is the response object alone; no header of the batch call is the op's.
    answerHeaders() {
      return {};
    },

    parseTarget(pathname: string): AppTarget {
      return { appId: pathname, path: pathname };
    },

    // The batch shares the single calls' path: a caller's own array is told apart by its body (toOp).
    isBatchEndpoint() {
      return false;
    },

    toOp({ method, target, body, search }: OpInput) {
      if (method !== 'POST') return refuse('method', 'JSON-RPC calls are POSTs');
      // One batch goes to one URL: a query would have to be every entry's, so it goes alone.
      if (search !== undefined && search !== '' && search !== '?')
        return refuse('query', 'a query string on a JSON-RPC endpoint');
      if (body === undefined) return refuse('body', 'a POST without a body');
      const request = parsed(body);
      if (Array.isArray(request)) return refuse('client-batch', "the caller's own JSON-RPC batch");
      // Not a request object the proxy understands: the upstream judges it (and answers its error).
      if (!isObject(request) || request.jsonrpc !== '2.0' || typeof request.method !== 'string')
        return refuse('body', 'not a JSON-RPC 2.0 request object');
      if (Object.hasOwn(request, 'params') && typeof request.params !== 'object')
        return refuse('body', 'params that are neither an array nor an object');
      if (!Object.hasOwn(request, 'id')) return refuse('notification', 'a notification has no answer');
      if (!isGivableId(request.id)) return refuse('body', 'an id that is null or not an exact number');
      // Two id members: parsers disagree on which one counts, so the proxy does not pick one.
      if (memberSpans(body)?.filter((member) => member.name === 'id').length !== 1)
        return refuse('body', 'more than one id member');
      const write = isWrite(request.method);
      const op: OpRequest = {
        method: 'POST',
        path: target.path,
        query: {},
        body,
        apiVersion: undefined,
        write,
        // A read may be resent after a 5xx or a reset (docs/jsonrpc-dialect.md: list every method
        // that changes state in JSONRPC_WRITE_METHODS); a write never is.
        retrySafe: !write,
      };
      return { op };
    },

    batchRequest(path: string, ops: readonly OpRequest[]): UpstreamRequest {
      return {
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json' },
        body: `[${ops.map((op, seq) => withSequence(op.body ?? '', seq)).join(',')}]`,
      };
    },

    // Alone, the request goes as the caller sent it, its own id and all: the answer needs no change.
    singleRequest(path: string, op: OpRequest): UpstreamRequest {
      return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: op.body };
    },

    decodeResults(body: unknown, count: number, _plan?: unknown, context?: BatchContext): OpResult[] {
      // A lone object (a parse error with id null, §5.1) answers no entry: every op gets its 502.
      const entries = Array.isArray(body) ? body : [];
      const read = entries.map((entry: unknown) => {
        // The proxy numbered its entries 0..n-1; any other id is none of its ops.
        if (!isObject(entry) || typeof entry.id !== 'number') return undefined;
        // A response object is the op's 200; anything else gets no valid status (a 502).
        return { seq: entry.id, status: isResponse(entry) ? 200 : undefined, entry };
      });
      return splitResults(read, count, ({ seq, entry }, status) => {
        const id = callerId(context?.ops[seq]);
        if (id === undefined)
          return { ok: false, reason: "the caller's id for this operation is unknown (no batch context)" };
        // In place, so the answer keeps the upstream's member order.
        return { ok: true, status, body: { ...entry, id } };
      });
    },

    readBatchAnswer(status: number, body: string, count: number, plan?, context?): BatchAnswer {
      return readBatchEnvelope(status, body, (decoded) =>
        dialect.decodeResults(decoded, count, plan, context),
      );
    },
  };
  return dialect;
}

/** The dialect with no method listed as a write: every call is a read. */
export const jsonrpc = jsonrpcDialect();
