// The Microsoft Graph JSON batching dialect: `POST /{v1.0|beta}/$batch` with
// `{"requests":[{id,method,url,headers?,body?}]}` and `{"responses":[{id,status,headers?,body?}]}`
// answers in any order (learn.microsoft.com/graph/json-batching; docs/graph-dialect.md §1–2).
//
// The scope (`AppTarget.appId`) is the API version: one batch carries one version, since every op's
// `url` is relative to it. Ops carry the caller's query text verbatim and the request headers Graph
// reads per request; each op's answer headers (Location, ETag, Retry-After…) reach its caller.

import { createHash } from 'node:crypto';
import type {
  AppTarget,
  BatchAnswer,
  BatchDialect,
  BatchPlan,
  HeaderRule,
  OpInput,
  OpRequest,
  OpResult,
  ThrottleScope,
  UpstreamRequest,
} from './dialect.js';
import { readBatchEnvelope, splitResults } from './envelope.js';
import { isCommonlyDroppable, relayableHeaders } from './headers.js';

/** Documented: at most 20 requests per batch. */
const MAX_OPS = 20;
const VERSIONS: ReadonlySet<string> = new Set(['v1.0', 'beta']);

/**
 * Request headers Graph reads per request, so they travel inside the op's `headers`: the body's type,
 * preconditions, query behaviour, preferences, language, throttling priority and the client's own
 * request id (docs/graph-dialect.md §2.3).
 */
const CARRIED: ReadonlySet<string> = new Set([
  'content-type',
  'if-match',
  'if-none-match',
  'consistencylevel',
  'prefer',
  'accept-language',
  'x-ms-throttle-priority',
  'client-request-id',
]);

/** JSON text of a string, safe to splice into hand-built JSON. */
const str = JSON.stringify;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `/users/u1/photo/$value`: a media body, base64 inside a batch (not carried in v1). */
function isMediaPath(path: string): boolean {
  return /\/(\$|%24)value$/i.test(path.endsWith('/') ? path.slice(0, -1) : path);
}

function opHeaders(op: OpRequest): Record<string, string> {
  const headers: Record<string, string> = { ...op.headers };
  // Graph refuses the whole batch when a request with a body has no Content-Type.
  if (op.body !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  return headers;
}

function isJsonType(value: string | undefined): boolean {
  const type = value?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One op's answer. Graph puts a body that is not JSON (text/csv, text/plain…) in the batch as a
 * base64 string (community-observed; json-batching shows JSON bodies only): decoded back to its text
 * for the caller. A binary one cannot travel in the proxy's text answer: that op gets a 502 that says
 * how to get it (alone, `x-batch-bypass: 1`) — it is a read or a media path, which pass through anyway.
 */
function answerOf(status: number, headers: Record<string, string>, body: unknown): OpResult {
  const type = headers['content-type'];
  if (typeof body !== 'string' || type === undefined || isJsonType(type))
    return { ok: true, status, body, headers };
  // Not base64 at all: the text as Graph gave it.
  if (!/^[A-Za-z0-9+/_\-\s]*={0,2}\s*$/.test(body))
    return { ok: true, status, body: undefined, headers, text: body };
  try {
    return { ok: true, status, body: undefined, headers, text: utf8.decode(Buffer.from(body, 'base64')) };
  } catch {
    return {
      ok: false,
      reason: 'the operation answered a binary body inside the batch; send it with x-batch-bypass: 1',
    };
  }
}

/** A decoded response's `headers` member: a header → string object, or nothing usable. */
function responseHeaders(value: unknown): Record<string, string> {
  return isObject(value) ? relayableHeaders(value) : {};
}

/**
 * Who `/me` is for a credential: the bearer JWT's `oid` claim (read, not verified: only ordering uses
 * it, never isolation), else a digest of the credential, so two users' `/me` never look alike.
 */
function meOf(credential: string): string {
  const oid = claimsOf(credential)?.oid;
  if (isClaim(oid)) return oid;
  return `~${createHash('sha256').update(credential).digest('hex').slice(0, 32)}`;
}

/** The payload of a bearer JWT, unverified; undefined when the credential is not one. */
function claimsOf(credential: string): Record<string, unknown> | undefined {
  const token = /^Bearer\s+(.+)$/i.exec(credential)?.[1];
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return isObject(claims) ? claims : undefined;
  } catch {
    return undefined; // not a JWT
  }
}

/** A claim usable as part of a key: an id (GUIDs, tenant names), never free text. */
function isClaim(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9A-Za-z-]{1,64}$/.test(value);
}

/**
 * Graph's limits are per tenant and application: `tid` and `appid` (v1 tokens) or `azp` (v2). An
 * app-only or a user token alike; undefined when either is missing.
 */
function tenantOf(credential: string): string | undefined {
  const claims = claimsOf(credential);
  const app = claims?.appid ?? claims?.azp;
  return isClaim(claims?.tid) && isClaim(app) ? `${claims.tid}/${app}` : undefined;
}

/**
 * The scope Graph names for a throttle, `x-ms-throttle-scope: {Scope}/{Limit}/{AppId}/{Id}` (e.g.
 * `Mailbox/Application/…`, `Tenant_Application/ReadWrite/…`): a user's or a mailbox's is the caller's
 * group; any other (the tenant, the application, both) is as wide as the API version the proxy
 * paces. Absent or unreadable: undefined (per user, the dialect's default).
 */
function throttleScopeOf(headers: Readonly<Record<string, string>>): ThrottleScope | undefined {
  const value = headers['x-ms-throttle-scope'];
  const scope = value?.split('/', 1)[0]?.trim().toLowerCase();
  if (!scope) return undefined;
  return scope === 'mailbox' || scope === 'user' ? 'credential' : 'app';
}

export const graph: BatchDialect = {
  name: 'graph',
  maxOps: MAX_OPS,
  // A $batch of 20 counts as 20 requests against every Graph limit.
  cost: 'op',
  serialChains: true,
  // Graph selects its version by path, not by a header.
  apiVersionHeader: '',

  requestHeader(name: string): HeaderRule {
    if (CARRIED.has(name)) return 'carry';
    return isCommonlyDroppable(name) ? 'drop' : 'pass';
  },

  answerHeaders(headers) {
    return relayableHeaders(headers);
  },

  parseTarget(pathname: string): AppTarget | undefined {
    // `/{version}/{something}`: a known version and a non-empty path below it.
    const slash = pathname.indexOf('/', 1);
    if (slash === -1 || slash === pathname.length - 1) return undefined;
    const version = pathname.slice(1, slash);
    if (!VERSIONS.has(version)) return undefined;
    return { appId: version, path: pathname.slice(slash) };
  },

  // `/me/…` is `/users/{oid}/…` of the caller: ordering compares it so. An alias by UPN
  // (`/users/a@contoso.com`) stays a different spelling (documented, as SPEC §8c "one spelling").
  // Graph's paths are case-insensitive (`/ME/Messages` is `/me/messages`): ordering compares them
  // folded, or a write and a read of one resource spelt differently would share a parallel batch.
  throttleScope: 'credential',
  throttleScopeOf,

  resourceKey(path: string, credential: string): string {
    const folded = path.toLowerCase();
    if (folded !== '/me' && !folded.startsWith('/me/')) return folded;
    return `/users/${meOf(credential).toLowerCase()}${folded.slice(3)}`;
  },

  budgetScopeOf: tenantOf,

  isBatchEndpoint(target: AppTarget): boolean {
    return /^\/(\$|%24)batch\/?$/i.test(target.path);
  },

  toOp({ method, target, body, headers, search }: OpInput) {
    if (method === 'GET' && body !== undefined) return { passThrough: 'a GET with a body', reason: 'body' };
    // Graph refuses the whole batch for a write without a body; adding `{}` would make a request
    // Graph refuses into one that runs. Alone, the upstream judges it.
    if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && body === undefined)
      return { passThrough: 'a write without a body', reason: 'body' };
    if (isMediaPath(target.path))
      return { passThrough: 'a media ($value) body cannot travel in a batch op', reason: 'body' };
    const carried: Record<string, string> = Object.create(null);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (graph.requestHeader(name) === 'carry') carried[name] = value;
    }
    const op: OpRequest = {
      method,
      path: target.path,
      query: {},
      body,
      apiVersion: undefined,
      headers: { ...carried },
      search: search === '?' ? '' : (search ?? ''),
    };
    return { op };
  },

  batchRequest(version: string, ops: readonly OpRequest[], plan: BatchPlan = 'parallel'): UpstreamRequest {
    // Built as text so each caller's body is spliced in as received, never parsed and re-serialised.
    const parts = ops.map((op, seq) => {
      const headers = opHeaders(op);
      const withHeaders = Object.keys(headers).length > 0 ? `,"headers":${str(headers)}` : '';
      const withBody = op.body === undefined ? '' : `,"body":${op.body}`;
      // A serial chain: each op runs only after the previous one succeeded.
      const after = plan === 'serial' && seq > 0 ? `,"dependsOn":["${seq - 1}"]` : '';
      return `{"id":"${seq}","method":"${op.method}","url":${str(op.path + (op.search ?? ''))}${withHeaders}${withBody}${after}}`;
    });
    return {
      method: 'POST',
      path: `/${version}/$batch`,
      headers: { 'content-type': 'application/json' },
      body: `{"requests":[${parts.join(',')}]}`,
    };
  },

  singleRequest(version: string, op: OpRequest): UpstreamRequest {
    return {
      method: op.method,
      path: `/${version}${op.path}${op.search ?? ''}`,
      headers: opHeaders(op),
      body: op.body,
    };
  },

  decodeResults(body: unknown, count: number, plan: BatchPlan = 'parallel'): OpResult[] {
    if (!isObject(body) || !Array.isArray(body.responses)) {
      return Array.from({ length: count }, () => ({
        ok: false,
        reason: 'the batch response has no "responses" array',
      }));
    }
    // The proxy sends ids "0".."n-1"; anything else is not an answer to one of its ops.
    const entries = (body.responses as unknown[]).map((entry) => {
      if (!isObject(entry)) return undefined;
      const { id, status } = entry;
      if (typeof id !== 'string' || !/^(0|[1-9][0-9]{0,5})$/.test(id)) return undefined;
      return { seq: Number(id), status, entry };
    });
    return splitResults(entries, count, ({ entry }, status) => {
      const headers = responseHeaders(entry.headers);
      // Throttled inside a 200 batch: Graph did not run it; it goes again after its Retry-After.
      // A 424 in a chain the proxy built: the op's predecessor failed, so it did not run (the
      // dependency is the proxy's ordering artifact, not the caller's): it goes again.
      if (status === 429) {
        const scope = throttleScopeOf(headers);
        return scope
          ? { ok: 'again', why: '429', retryAfter: headers['retry-after'], scope }
          : { ok: 'again', why: '429', retryAfter: headers['retry-after'] };
      }
      if (status === 424 && plan === 'serial') return { ok: 'again', why: '424', retryAfter: undefined };
      return answerOf(status, headers, entry.body);
    });
  },

  readBatchAnswer(status: number, body: string, count: number, plan: BatchPlan = 'parallel'): BatchAnswer {
    return readBatchEnvelope(status, body, (decoded) => graph.decodeResults(decoded, count, plan));
  },
};
