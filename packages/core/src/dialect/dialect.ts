// The seam between the engine and one upstream batch API: everything that knows the wire format of
// a batch call lives behind this interface, so a second API (e.g. Microsoft Graph `$batch`) is one
// new module (talkjs.ts, graph.ts).

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
  /**
   * Request headers that travel inside the op (lower-case names): only those the dialect's
   * `requestHeader` says `carry`. Absent for dialects that carry none (TalkJS).
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * The caller's query text verbatim (`?$filter=…`, repeated keys allowed), for dialects that put it
   * in the op as received (Graph); absent for those that carry `query` (TalkJS).
   */
  readonly search?: string;
  /**
   * What the op does, as its dialect says (a JSON-RPC batch is all POSTs): a write is ordered
   * behind and ahead of the other ops of its resource and never collapses; a retry-safe op may be
   * sent again after a 5xx, a reset or a timeout. Absent: by method (`methodSemantics`).
   */
  readonly write?: boolean;
  readonly retrySafe?: boolean;
}

const RETRY_SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'PUT', 'DELETE']);

/** REST's meaning of a method: GET reads; GET, PUT and DELETE may run twice without harm. */
export function methodSemantics(method: string): { readonly write: boolean; readonly retrySafe: boolean } {
  return { write: method !== 'GET', retrySafe: RETRY_SAFE_METHODS.has(method) };
}

/**
 * Why `toOp` refused a call, as a code (SPEC §3: the pass reasons): its query string, or its body,
 * cannot travel inside an op; its HTTP method is not one the dialect batches (JSON-RPC: only POST);
 * it expects no answer (a JSON-RPC notification); it is already a batch of the caller's own (a
 * JSON-RPC array on the ordinary endpoint).
 */
export type OpRefusalReason = 'query' | 'body' | 'method' | 'notification' | 'client-batch';

/** A call `toOp` refused: the code, and the words for a log or a test. */
export interface OpRefusal {
  readonly passThrough: string;
  readonly reason: OpRefusalReason;
}

/** What a request header does to a call: travels inside the op, may be dropped, or forbids batching. */
export type HeaderRule = 'carry' | 'drop' | 'pass';

export type OpResult =
  | {
      readonly ok: true;
      readonly status: number;
      /** The op's decoded body; undefined when the op's answer has none (e.g. a Graph 204). */
      readonly body: unknown;
      /** The op's own answer headers that reach the caller (lower-case names); absent = none. */
      readonly headers?: Readonly<Record<string, string>>;
      /** The body as text when it is not JSON (Graph: a base64 body decoded); replaces `body`. */
      readonly text?: string;
    }
  | { readonly ok: false; readonly reason: string }
  /**
   * The op was not executed and may be sent again (a 429 inside a 200 batch): `retryAfter` is its
   * Retry-After header as received, if any.
   */
  | {
      readonly ok: 'again';
      /** `429`: throttled (pauses the bucket); `424`: its predecessor in a proxy-built chain failed. */
      readonly why: '429' | '424';
      readonly retryAfter: string | undefined;
      /** The scope the upstream named for the throttle (`throttleScopeOf`); absent = the dialect's. */
      readonly scope?: ThrottleScope;
    };

/** What a 429 pauses (SPEC §8d): the app's budget, or the caller's group alone. */
export type ThrottleScope = 'app' | 'credential';

/** How a batch's ops run: side by side, or as a serial chain in the given order (Graph dependsOn). */
export type BatchPlan = 'parallel' | 'serial';

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
  /** The caller's headers the dialect carries (`requestHeader` = `carry`), lower-case names. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The raw query text of the call (`?…` or empty). */
  readonly search?: string;
}

/**
 * What a batch call's answer came with besides its status and body: the ops it carried, in sequence
 * order (a dialect that rewrites the caller's own ids, JSON-RPC, restores them from these), and the
 * answer's headers (a multipart answer names its boundary in Content-Type).
 */
export interface BatchContext {
  readonly ops: readonly OpRequest[];
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * How the upstream counts a batch call against its limits (SPEC §7b): `call` — one call however many
 * ops it carries (TalkJS, Salesforce Composite); `op` — one request per op (Graph, Google batch).
 */
export type BatchCost = 'call' | 'op';

export interface BatchDialect {
  readonly name: string;
  /** The most operations one batch call may carry. */
  readonly maxOps: number;
  /** How a batch call counts against the upstream's limits; absent = `call`. */
  readonly cost?: BatchCost;
  /** The upstream can run a batch's ops as a serial chain (`batchRequest` with `serial`). */
  readonly serialChains?: boolean;
  /** The request header that selects the API version on a single call (lower case). */
  readonly apiVersionHeader: string;
  /**
   * What a caller's request header (lower-case name) does: `carry` (travels inside the op),
   * `drop` (may be dropped without changing what the upstream does) or `pass` (the call passes
   * through unless the operator made the header droppable, BATCH_DROPPABLE_HEADERS).
   */
  requestHeader(name: string): HeaderRule;
  /** The headers of a single call's answer that reach its caller (lower-case names). */
  answerHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string>;
  /**
   * Splits a request path into its scope and the path below it; undefined when it is not a resource
   * of the upstream. The scope (`appId`) is what the engine keys apps, budgets and ordering by: the
   * TalkJS app, or the Graph API version (one batch carries one version).
   */
  parseTarget(pathname: string): AppTarget | undefined;
  /**
   * The path the ordering rules (SPEC §5) compare for an op sent with `credential`, when it differs
   * from the op's path: Graph's `/me/…` names a different user per credential. Absent = the path.
   */
  resourceKey?(path: string, credential: string): string;
  /**
   * The tenant a credential's claims name, where the upstream limits per tenant (SPEC §8d: Graph
   * limits per tenant and application): its calls spend that tenant's budgets once the upstream has
   * accepted the credential (batcher/scopes.ts). The claims are unverified: never trusted before.
   * Absent: every group spends the app's budgets.
   */
  budgetScopeOf?(credential: string): string | undefined;
  /**
   * What a 429 on a single call, or on one op inside a batch, means (SPEC §8d): `app` (default) — the
   * app's budget is spent, pause the app's bucket; `credential` — that caller is throttled (Graph
   * throttles per user and mailbox), pause its group only. A whole batch call's 429 is always the
   * app's.
   */
  readonly throttleScope?: ThrottleScope;
  /**
   * The scope a 429's answer headers name, when the upstream says one (Graph `x-ms-throttle-scope`);
   * undefined = `throttleScope`.
   */
  throttleScopeOf?(headers: Readonly<Record<string, string>>): ThrottleScope | undefined;
  /** True for the upstream's own batch endpoint (a client calling it directly is passed through). */
  isBatchEndpoint(target: AppTarget): boolean;
  /** The op for a call, or a reason the call cannot travel inside a batch. */
  toOp(input: OpInput): { op: OpRequest } | OpRefusal;
  /** The batch call carrying `ops`; op i gets sequence number i. */
  batchRequest(appId: string, ops: readonly OpRequest[], plan?: BatchPlan): UpstreamRequest;
  /** The same op sent as an ordinary single call (the single-call lane). */
  singleRequest(appId: string, op: OpRequest): UpstreamRequest;
  /** Maps a batch call's decoded JSON body to one result per op, by sequence number. */
  decodeResults(body: unknown, count: number, plan?: BatchPlan, context?: BatchContext): OpResult[];
  /** Reads a batch call's answer (status and body text) for `count` ops. */
  readBatchAnswer(
    status: number,
    body: string,
    count: number,
    plan?: BatchPlan,
    context?: BatchContext,
  ): BatchAnswer;
}
