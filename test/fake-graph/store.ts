// In-memory Microsoft Graph resources (users, their messages, groups and members) and the router
// that executes one request against them. Shared by single calls and `$batch` requests so both doors
// behave the same. Shapes follow the public Graph v1.0 reference: OData envelopes (`value`,
// `@odata.context`), 201 + Location on create, 204 on PATCH of directory objects and on DELETE,
// weak ETags, `If-Match` preconditions, and Graph's error body `{ "error": { code, message } }`.

export const ODATA_JSON =
  'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

/** What one request produced: status, the headers Graph would send with it, and a JSON body. */
export interface GraphResult {
  status: number;
  headers: Record<string, string>;
  /** Absent for 204. */
  body?: unknown;
}

export interface UserSeed {
  displayName?: string;
  mail?: string;
  userPrincipalName?: string;
  jobTitle?: string;
}

/** The resources a tenant starts with (and returns to on reset). */
export interface TenantSeed {
  users?: Record<string, UserSeed>;
  /** group id -> member user ids. */
  groups?: Record<string, { displayName?: string; members?: string[] }>;
}

/** Who is calling and where: enough for `/me`, Location headers and `@odata.context`. */
export interface ExecContext {
  tenant: string;
  version: string;
  /** The user the token acts for; null for an app-only token (then `/me` is a 400). */
  me: string | null;
  /** Absolute root of the fake, e.g. `http://127.0.0.1:1234`. */
  baseUrl: string;
}

export interface ExecRequest {
  method: string;
  /** Path below the version, already split from the query, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  /** Request headers with lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON (or the raw string/Buffer when the Content-Type is not JSON); undefined when none. */
  body: unknown;
}

type Json = Record<string, unknown>;

interface Entity {
  data: Json;
  /** Bumped on every change: the ETag. */
  version: number;
}

interface Message extends Entity {
  order: number;
}

interface TenantData {
  users: Map<string, Entity>;
  messages: Map<string, Map<string, Message>>;
  groups: Map<string, Entity & { members: Set<string> }>;
}

const USER_FIELDS = new Set([
  'displayName',
  'givenName',
  'surname',
  'mail',
  'userPrincipalName',
  'jobTitle',
  'city',
  'department',
  'officeLocation',
  'mobilePhone',
  'accountEnabled',
  'mailNickname',
  'passwordProfile',
  'usageLocation',
]);

export function graphError(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  return {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: { error: { code, message } },
  } satisfies GraphResult;
}

const badRequest = (message: string) => graphError(400, 'BadRequest', message);
const notAllowed = () =>
  graphError(405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.');

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function isJsonType(value: string | undefined): boolean {
  return value?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/** A stable GUID-looking id from a counter, so runs are reproducible. */
function guid(prefix: number, n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `${prefix.toString(16).padStart(8, '0')}-0000-4000-8000-${hex}`;
}

export function etagOf(e: Entity, kind: string): string {
  return `W/"${Buffer.from(`${kind}:${e.data.id}:${e.version}`).toString('base64')}"`;
}

export class GraphStore {
  private tenants = new Map<string, TenantData>();
  private counter = 0;

  constructor(private readonly seeds: Record<string, TenantSeed>) {
    this.reset();
  }

  reset(): void {
    this.tenants.clear();
    this.counter = 0;
    for (const [tenant, seed] of Object.entries(this.seeds)) this.seed(tenant, seed);
  }

  /** Makes sure a user exists (used for the users tokens act for). */
  ensureUser(tenant: string, id: string): void {
    const t = this.data(tenant);
    if (!t.users.has(id)) t.users.set(id, { data: this.newUser(tenant, id, {}), version: 1 });
  }

  private seed(tenant: string, seed: TenantSeed): void {
    const t = this.data(tenant);
    for (const [id, fields] of Object.entries(seed.users ?? {})) {
      t.users.set(id, { data: this.newUser(tenant, id, fields), version: 1 });
    }
    for (const [id, g] of Object.entries(seed.groups ?? {})) {
      for (const m of g.members ?? []) this.ensureUser(tenant, m);
      t.groups.set(id, {
        data: { id, displayName: g.displayName ?? id, mailEnabled: false, securityEnabled: true },
        version: 1,
        members: new Set(g.members ?? []),
      });
    }
  }

  private newUser(tenant: string, id: string, fields: UserSeed): Json {
    return {
      id,
      displayName: fields.displayName ?? id,
      userPrincipalName: fields.userPrincipalName ?? `${id}@${tenant}.onmicrosoft.com`,
      mail: fields.mail ?? `${id}@${tenant}.onmicrosoft.com`,
      jobTitle: fields.jobTitle ?? null,
    };
  }

  private data(tenant: string): TenantData {
    let t = this.tenants.get(tenant);
    if (!t) {
      t = { users: new Map(), messages: new Map(), groups: new Map() };
      this.tenants.set(tenant, t);
    }
    return t;
  }

  private findUser(t: TenantData, key: string): Entity | undefined {
    const byId = t.users.get(key);
    if (byId) return byId;
    const lower = key.toLowerCase();
    for (const u of t.users.values()) {
      if (String(u.data.id).toLowerCase() === lower) return u;
      if (String(u.data.userPrincipalName).toLowerCase() === lower) return u;
    }
    return undefined;
  }

  execute(ctx: ExecContext, req: ExecRequest): GraphResult {
    let segments: string[];
    try {
      segments = req.path
        .split('/')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s));
    } catch {
      return badRequest('Invalid request URL.');
    }
    // Graph's paths are case-insensitive (`/ME/Messages` is `/me/messages`): keywords compare folded.
    const keyword = (s: string | undefined) => s?.toLowerCase();
    if (keyword(segments[0]) === 'me') {
      if (ctx.me === null) return badRequest('/me request is only valid with delegated authentication flow.');
      segments = ['users', ctx.me, ...segments.slice(1)];
    }
    const t = this.data(ctx.tenant);
    const [rawRoot, id, rawSub, rawSubId, rawRef, ...extra] = segments;
    const root = keyword(rawRoot);
    const sub = keyword(rawSub);
    const subId = rawSubId?.toLowerCase() === '$ref' ? '$ref' : rawSubId;
    const ref = rawRef?.toLowerCase() === '$ref' ? '$ref' : rawRef;
    if (root === 'users') {
      if (id === undefined) return this.usersCollection(ctx, t, req);
      const user = this.findUser(t, id);
      if (!user) return notFoundUser(id);
      if (sub === undefined) return this.userEntity(ctx, t, user, req);
      if (sub === 'messages' && ref === undefined) {
        return this.messages(ctx, t, String(user.data.id), subId, req);
      }
      return badRequest(`Resource not found for the segment '${ref ?? sub}'.`);
    }
    if (root === 'groups') {
      if (id === undefined) return this.groupsCollection(ctx, t, req);
      const group = t.groups.get(id);
      if (!group) return notFoundUser(id);
      if (sub === undefined) return this.groupEntity(ctx, t, group, req);
      if (sub === 'members' && extra.length === 0) return this.members(ctx, t, group, subId, ref, req);
      return badRequest(`Resource not found for the segment '${sub}'.`);
    }
    return badRequest(`Resource not found for the segment '${rawRoot ?? ''}'.`);
  }

  // ---- users ----

  private usersCollection(ctx: ExecContext, t: TenantData, req: ExecRequest): GraphResult {
    if (req.method === 'GET') {
      const advanced = req.query.get('$count') === 'true' || req.query.has('$search');
      if (advanced && req.headers.consistencylevel?.toLowerCase() !== 'eventual') {
        return graphError(
          400,
          'Request_UnsupportedQuery',
          'Advanced query options require the ConsistencyLevel header set to eventual.',
        );
      }
      const all = [...t.users.values()].map((u) => u.data);
      return this.list(ctx, 'users', all, req.query, advanced);
    }
    if (req.method === 'POST') {
      const parsed = jsonBody(req);
      if (!parsed.ok) return parsed.error;
      const body = parsed.body;
      const problem = checkUserFields(body);
      if (problem) return badRequest(problem);
      if (typeof body.displayName !== 'string' || typeof body.userPrincipalName !== 'string') {
        return badRequest('displayName and userPrincipalName are required.');
      }
      if (this.findUser(t, body.userPrincipalName)) {
        return badRequest(
          'Another object with the same value for property userPrincipalName already exists.',
        );
      }
      const id = guid(1, ++this.counter);
      const { passwordProfile: _secret, ...visible } = body;
      const user: Entity = { data: { ...this.newUser(ctx.tenant, id, {}), ...visible, id }, version: 1 };
      t.users.set(id, user);
      return this.entity(ctx, 201, 'users', user, 'user', `/users/${id}`);
    }
    return notAllowed();
  }

  private userEntity(ctx: ExecContext, t: TenantData, user: Entity, req: ExecRequest): GraphResult {
    const id = String(user.data.id);
    if (req.method === 'GET') return this.entity(ctx, 200, 'users', user, 'user', undefined, req.query);
    const precondition = ifMatch(req, user, 'user');
    if (precondition) return precondition;
    if (req.method === 'PATCH') {
      const parsed = jsonBody(req);
      if (!parsed.ok) return parsed.error;
      const body = parsed.body;
      const problem = checkUserFields(body);
      if (problem) return badRequest(problem);
      const { passwordProfile: _secret, ...visible } = body;
      Object.assign(user.data, visible, { id });
      user.version++;
      return { status: 204, headers: {} };
    }
    if (req.method === 'DELETE') {
      t.users.delete(id);
      t.messages.delete(id);
      for (const g of t.groups.values()) g.members.delete(id);
      return { status: 204, headers: {} };
    }
    return notAllowed();
  }

  // ---- messages ----

  private messages(
    ctx: ExecContext,
    t: TenantData,
    userId: string,
    messageId: string | undefined,
    req: ExecRequest,
  ): GraphResult {
    let box = t.messages.get(userId);
    if (!box) {
      box = new Map();
      t.messages.set(userId, box);
    }
    const context = `users('${userId}')/messages`;
    if (messageId === undefined) {
      if (req.method === 'GET') {
        // Graph lists a mailbox newest first, 10 to a page by default.
        const all = [...box.values()]
          .sort((a, b) => b.order - a.order)
          .map((m) => this.withEtag(m, 'message'));
        return this.list(ctx, context, all, req.query, false, 10);
      }
      if (req.method === 'POST') {
        const parsed = jsonBody(req);
        if (!parsed.ok) return parsed.error;
        const body = parsed.body;
        if (body.subject !== undefined && typeof body.subject !== 'string') {
          return badRequest('subject must be a string.');
        }
        const id = `AAMk${Buffer.from(`msg-${++this.counter}`).toString('base64url')}`;
        const m: Message = {
          data: {
            id,
            subject: body.subject ?? '',
            body: isObject(body.body) ? body.body : { contentType: 'text', content: '' },
            toRecipients: Array.isArray(body.toRecipients) ? body.toRecipients : [],
            isRead: false,
            isDraft: true,
            createdDateTime: new Date(1_700_000_000_000 + this.counter * 1000).toISOString(),
          },
          version: 1,
          order: this.counter,
        };
        box.set(id, m);
        return this.entity(ctx, 201, context, m, 'message', `/users/${userId}/messages/${id}`);
      }
      return notAllowed();
    }
    const m = box.get(messageId);
    if (!m) return graphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    if (req.method === 'GET') return this.entity(ctx, 200, context, m, 'message', undefined, req.query);
    const precondition = ifMatch(req, m, 'message');
    if (precondition) return precondition;
    if (req.method === 'PATCH') {
      const parsed = jsonBody(req);
      if (!parsed.ok) return parsed.error;
      const body = parsed.body;
      Object.assign(m.data, body, { id: m.data.id });
      m.version++;
      // Outlook resources answer a PATCH with the updated entity.
      return this.entity(ctx, 200, context, m, 'message');
    }
    if (req.method === 'DELETE') {
      box.delete(messageId);
      return { status: 204, headers: {} };
    }
    return notAllowed();
  }

  // ---- groups ----

  private groupsCollection(ctx: ExecContext, t: TenantData, req: ExecRequest): GraphResult {
    if (req.method === 'GET') {
      return this.list(
        ctx,
        'groups',
        [...t.groups.values()].map((g) => g.data),
        req.query,
        false,
      );
    }
    if (req.method === 'POST') {
      const parsed = jsonBody(req);
      if (!parsed.ok) return parsed.error;
      const body = parsed.body;
      if (typeof body.displayName !== 'string') return badRequest('displayName is required.');
      const id = guid(2, ++this.counter);
      const group = { data: { ...body, id }, version: 1, members: new Set<string>() };
      t.groups.set(id, group);
      return this.entity(ctx, 201, 'groups', group, 'group', `/groups/${id}`);
    }
    return notAllowed();
  }

  private groupEntity(
    ctx: ExecContext,
    t: TenantData,
    group: Entity & { members: Set<string> },
    req: ExecRequest,
  ): GraphResult {
    if (req.method === 'GET') return this.entity(ctx, 200, 'groups', group, 'group', undefined, req.query);
    const precondition = ifMatch(req, group, 'group');
    if (precondition) return precondition;
    if (req.method === 'PATCH') {
      const parsed = jsonBody(req);
      if (!parsed.ok) return parsed.error;
      const body = parsed.body;
      Object.assign(group.data, body, { id: group.data.id });
      group.version++;
      return { status: 204, headers: {} };
    }
    if (req.method === 'DELETE') {
      t.groups.delete(String(group.data.id));
      return { status: 204, headers: {} };
    }
    return notAllowed();
  }

  /** `GET members`, `POST members/$ref` (add) and `DELETE members/{id}/$ref` (remove). */
  private members(
    ctx: ExecContext,
    t: TenantData,
    group: Entity & { members: Set<string> },
    memberOrRef: string | undefined,
    ref: string | undefined,
    req: ExecRequest,
  ): GraphResult {
    if (memberOrRef === undefined) {
      if (req.method !== 'GET') return notAllowed();
      const members = [...group.members].flatMap((id) => {
        const u = t.users.get(id);
        return u ? [{ '@odata.type': '#microsoft.graph.user', ...u.data }] : [];
      });
      return this.list(ctx, 'directoryObjects', members, req.query, false);
    }
    if (memberOrRef === '$ref' && ref === undefined) {
      if (req.method !== 'POST') return notAllowed();
      const parsed = jsonBody(req);
      if (!parsed.ok) return parsed.error;
      const body = parsed.body;
      const odataId = body['@odata.id'];
      const m = typeof odataId === 'string' ? /\/(?:directoryObjects|users)\/([^/?]+)$/.exec(odataId) : null;
      if (!m?.[1]) return badRequest('Invalid OData reference: @odata.id must name a directory object.');
      const user = this.findUser(t, decodeURIComponent(m[1]));
      if (!user) return notFoundUser(m[1]);
      const uid = String(user.data.id);
      if (group.members.has(uid)) {
        return badRequest(
          "One or more added object references already exist for the following modified properties: 'members'.",
        );
      }
      group.members.add(uid);
      group.version++;
      return { status: 204, headers: {} };
    }
    if (ref === '$ref') {
      if (req.method !== 'DELETE') return notAllowed();
      if (!group.members.delete(memberOrRef)) return notFoundUser(memberOrRef);
      group.version++;
      return { status: 204, headers: {} };
    }
    return badRequest(`Resource not found for the segment '${ref ?? memberOrRef}'.`);
  }

  // ---- helpers ----

  private withEtag(e: Entity, kind: string): Json {
    return { '@odata.etag': etagOf(e, kind), ...e.data };
  }

  private entity(
    ctx: ExecContext,
    status: number,
    context: string,
    e: Entity,
    kind: string,
    location?: string,
    query?: URLSearchParams,
  ): GraphResult {
    const etag = etagOf(e, kind);
    const headers: Record<string, string> = { 'Content-Type': ODATA_JSON, ETag: etag };
    if (location) headers.Location = `${ctx.baseUrl}/${ctx.version}${location}`;
    const data = select({ '@odata.etag': etag, ...e.data }, query);
    return {
      status,
      headers,
      body: { '@odata.context': `${ctx.baseUrl}/${ctx.version}/$metadata#${context}/$entity`, ...data },
    };
  }

  private list(
    ctx: ExecContext,
    context: string,
    items: Json[],
    query: URLSearchParams,
    count: boolean,
    defaultTop = 100,
  ): GraphResult {
    const topParam = query.get('$top');
    const top = topParam === null ? defaultTop : Number(topParam);
    if (!Number.isInteger(top) || top < 0) return badRequest(`Invalid value '${topParam}' for $top.`);
    const body: Json = { '@odata.context': `${ctx.baseUrl}/${ctx.version}/$metadata#${context}` };
    if (count) body['@odata.count'] = items.length;
    body.value = items.slice(0, top).map((i) => select(i, query));
    return { status: 200, headers: { 'Content-Type': ODATA_JSON }, body };
  }
}

/** The JSON object body of a write, or the error Graph gives for a missing or non-JSON one. */
function jsonBody(req: ExecRequest): { ok: true; body: Json } | { ok: false; error: GraphResult } {
  const type = req.headers['content-type'];
  if (req.body === undefined)
    return { ok: false, error: badRequest('Empty Payload. JSON content expected.') };
  if (!isJsonType(type)) {
    return {
      ok: false,
      error: graphError(415, 'UnsupportedMediaType', `Content-Type '${type ?? ''}' is not supported.`),
    };
  }
  if (!isObject(req.body)) return { ok: false, error: badRequest('Unable to read JSON request payload.') };
  return { ok: true, body: req.body };
}

function select(item: Json, query: URLSearchParams | undefined): Json {
  const fields = query?.get('$select');
  if (!fields) return item;
  const keep = new Set(['id', ...fields.split(',').map((f) => f.trim())]);
  return Object.fromEntries(Object.entries(item).filter(([k]) => keep.has(k) || k.startsWith('@odata.')));
}

function notFoundUser(id: string): GraphResult {
  return graphError(
    404,
    'Request_ResourceNotFound',
    `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
  );
}

function checkUserFields(body: Json): string | undefined {
  for (const k of Object.keys(body)) {
    if (k === 'id') return 'Property id is read-only.';
    if (!USER_FIELDS.has(k)) return `Property '${k}' does not exist on type 'microsoft.graph.user'.`;
  }
  return undefined;
}

/** `If-Match` on a write: `*` or the current ETag passes; anything else is 412. */
function ifMatch(req: ExecRequest, e: Entity, kind: string): GraphResult | undefined {
  const want = req.headers['if-match'];
  if (want === undefined || want === '*' || want === etagOf(e, kind)) return undefined;
  return graphError(412, 'PreconditionFailed', 'The ETag in If-Match does not match the current version.');
}
