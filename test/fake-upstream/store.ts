// In-memory TalkJS resources (users, conversations, messages) and the router that executes one
// operation against them. Shared by single calls and batch ops, so both doors behave the same.

export interface OpResult {
  status: number;
  body: unknown;
}

type Json = Record<string, unknown>;

interface Participant {
  access: 'ReadWrite' | 'Read';
  notify: boolean;
}

interface Message {
  id: string;
  conversationId: string;
  type: 'UserMessage' | 'SystemMessage';
  senderId: string | null;
  text: string;
  custom: Record<string, string>;
  createdAt: number;
  editedAt: null;
  referencedMessageId: string | null;
  origin: 'rest';
  readBy: string[];
  attachment: null;
  location: null;
}

interface Conversation {
  id: string;
  subject: string | null;
  photoUrl: string | null;
  welcomeMessages: string[] | null;
  custom: Record<string, string>;
  participants: Record<string, Participant>;
  createdAt: number;
  messages: Message[];
}

interface AppData {
  users: Map<string, Json>;
  conversations: Map<string, Conversation>;
}

/** Documented maxima: 10 messages per POST, listings default 10 and cap at 100. */
const MAX_MESSAGES_PER_POST = 10;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

const ok = (body: unknown = {}): OpResult => ({ status: 200, body });
const bad = (message: string): OpResult => ({ status: 400, body: { errorCode: 'INVALID_REQUEST', message } });
const notFound = (message: string): OpResult => ({ status: 404, body: { errorCode: 'NOT_FOUND', message } });
/** The upstream answers an unknown route with a bare JSON string. */
export const noRoute = (method: string, path: string): OpResult => ({
  status: 404,
  body: `Could not find route ${method} ${path}`,
});

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** Validates the fields both users and conversations share; returns the first problem. */
function checkFields(body: Json, strings: string[], stringArrays: string[]): string | undefined {
  for (const k of strings) {
    if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string')
      return `${k} must be a string`;
  }
  for (const k of stringArrays) {
    if (body[k] !== undefined && body[k] !== null && !isStringArray(body[k]))
      return `${k} must be an array of strings`;
  }
  if (body.custom !== undefined && body.custom !== null && !isStringMap(body.custom)) {
    return 'custom must map strings to strings';
  }
  return undefined;
}

function parseLimit(query: Record<string, string>): number | string {
  const raw = query.limit;
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_LIMIT) return `limit must be an integer from 1 to ${MAX_LIMIT}`;
  return n;
}

function publicConversation(c: Conversation): Json {
  const { messages, ...rest } = c;
  return { ...rest, lastMessage: messages.at(-1) ?? null };
}

export class Store {
  private readonly apps = new Map<string, AppData>();
  private messageCounter = 0;

  reset(): void {
    this.apps.clear();
    this.messageCounter = 0;
  }

  private app(appId: string): AppData {
    let data = this.apps.get(appId);
    if (!data) {
      data = { users: new Map(), conversations: new Map() };
      this.apps.set(appId, data);
    }
    return data;
  }

  /**
   * Executes one operation. `path` is relative to /v1/{appId}, without query; its segments are
   * percent-decoded here. `body` is the parsed JSON body (undefined when there was none).
   */
  execute(
    appId: string,
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown,
  ): OpResult {
    const raw = path.split('/');
    if (raw[0] !== '' || raw.length < 2) return noRoute(method, path);
    const segs: string[] = [];
    for (const s of raw.slice(1)) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(s);
      } catch {
        return bad(`malformed path segment ${JSON.stringify(s)}`);
      }
      if (decoded === '.' || decoded === '..') return bad('path traversal segments are not allowed');
      if (decoded === '' || decoded.includes('/')) return noRoute(method, path);
      segs.push(decoded);
    }
    const data = this.app(appId);
    const [root, id, sub, ...more] = segs;
    if (more.length > 0) return noRoute(method, path);

    if (root === 'users') {
      if (id === undefined) return method === 'GET' ? this.listUsers(data, query) : noRoute(method, path);
      if (sub === undefined) {
        if (method === 'GET') {
          const user = data.users.get(id);
          return user ? ok(user) : notFound(`user ${id} not found`);
        }
        if (method === 'PUT') return this.putUser(data, id, body);
        if (method === 'DELETE') {
          data.users.delete(id);
          return ok();
        }
      } else if (sub === 'conversations' && method === 'GET') {
        return this.listUserConversations(data, id, query);
      }
      return noRoute(method, path);
    }

    if (root === 'conversations') {
      if (id === undefined)
        return method === 'GET' ? this.listConversations(data, query) : noRoute(method, path);
      if (sub === undefined) {
        if (method === 'GET') {
          const c = data.conversations.get(id);
          return c ? ok(publicConversation(c)) : notFound(`conversation ${id} not found`);
        }
        if (method === 'PUT') return this.putConversation(data, id, body);
        if (method === 'DELETE') {
          data.conversations.delete(id);
          return ok();
        }
      } else if (sub === 'messages') {
        if (method === 'GET') return this.listMessages(data, id, query);
        if (method === 'POST') return this.postMessages(data, id, body);
      }
      return noRoute(method, path);
    }
    return noRoute(method, path);
  }

  private listUsers(data: AppData, query: Record<string, string>): OpResult {
    const limit = parseLimit(query);
    if (typeof limit === 'string') return bad(limit);
    return ok({ data: [...data.users.values()].slice(0, limit) });
  }

  /** PUT merges the given fields into the user (the upstream documents PATCH-like semantics). */
  private putUser(data: AppData, id: string, body: unknown): OpResult {
    if (!isObject(body)) return bad('body must be a JSON object');
    const problem = checkFields(
      body,
      ['name', 'welcomeMessage', 'photoUrl', 'locale', 'role'],
      ['email', 'phone'],
    );
    if (problem) return bad(problem);
    const existing = data.users.get(id);
    const custom =
      body.custom === undefined ? existing?.custom : { ...(existing?.custom as Json), ...body.custom };
    data.users.set(id, {
      ...existing,
      ...body,
      ...(custom === undefined ? {} : { custom }),
      id,
      createdAt: existing?.createdAt ?? Date.now(),
    });
    return ok();
  }

  private listConversations(data: AppData, query: Record<string, string>): OpResult {
    const limit = parseLimit(query);
    if (typeof limit === 'string') return bad(limit);
    return ok({ data: [...data.conversations.values()].slice(0, limit).map(publicConversation) });
  }

  private listUserConversations(data: AppData, userId: string, query: Record<string, string>): OpResult {
    if (!data.users.has(userId)) return notFound(`user ${userId} not found`);
    const limit = parseLimit(query);
    if (typeof limit === 'string') return bad(limit);
    const convs = [...data.conversations.values()].filter((c) => Object.hasOwn(c.participants, userId));
    return ok({ data: convs.slice(0, limit).map(publicConversation) });
  }

  /** PUT merges; participants are only ever added (removal has its own endpoint upstream). */
  private putConversation(data: AppData, id: string, body: unknown): OpResult {
    if (!isObject(body)) return bad('body must be a JSON object');
    const problem = checkFields(body, ['subject', 'photoUrl'], ['participants', 'welcomeMessages']);
    if (problem) return bad(problem);
    let c = data.conversations.get(id);
    if (!c) {
      c = {
        id,
        subject: null,
        photoUrl: null,
        welcomeMessages: null,
        custom: {},
        // Null prototype: user ids such as "constructor" must not look like participants.
        participants: Object.create(null) as Record<string, Participant>,
        createdAt: Date.now(),
        messages: [],
      };
      data.conversations.set(id, c);
    }
    if (body.subject !== undefined) c.subject = body.subject as string | null;
    if (body.photoUrl !== undefined) c.photoUrl = body.photoUrl as string | null;
    if (body.welcomeMessages !== undefined) c.welcomeMessages = body.welcomeMessages as string[] | null;
    if (body.custom !== undefined) c.custom = body.custom === null ? {} : { ...c.custom, ...body.custom };
    for (const p of (body.participants as string[] | undefined) ?? []) {
      c.participants[p] ??= { access: 'ReadWrite', notify: true };
    }
    return ok();
  }

  /** Messages are listed newest first, as the upstream does. */
  private listMessages(data: AppData, convId: string, query: Record<string, string>): OpResult {
    const c = data.conversations.get(convId);
    if (!c) return notFound(`conversation ${convId} not found`);
    const limit = parseLimit(query);
    if (typeof limit === 'string') return bad(limit);
    return ok({ data: c.messages.slice(-limit).reverse() });
  }

  /**
   * The body is always an array (1..10 messages). A UserMessage needs a `sender` who participates in
   * the conversation; a SystemMessage has none. All-or-nothing: one bad message rejects the call.
   * Answers one `{id}` per message, in order.
   */
  private postMessages(data: AppData, convId: string, body: unknown): OpResult {
    const c = data.conversations.get(convId);
    if (!c) return notFound(`conversation ${convId} not found`);
    if (!Array.isArray(body)) return bad('body must be an array of messages');
    if (body.length === 0 || body.length > MAX_MESSAGES_PER_POST) {
      return bad(`send between 1 and ${MAX_MESSAGES_PER_POST} messages per request`);
    }
    const now = Date.now();
    const created: Message[] = [];
    for (const [i, m] of body.entries()) {
      if (!isObject(m)) return bad(`message ${i} must be an object`);
      if (typeof m.text !== 'string') return bad(`message ${i}: text must be a string`);
      if (m.custom !== undefined && !isStringMap(m.custom))
        return bad(`message ${i}: custom must map strings`);
      const type = m.type ?? (m.sender === undefined ? 'SystemMessage' : 'UserMessage');
      if (type === 'UserMessage') {
        if (typeof m.sender !== 'string') return bad(`message ${i}: a UserMessage needs a sender`);
        if (!Object.hasOwn(c.participants, m.sender))
          return bad(`message ${i}: sender ${m.sender} is not a participant`);
      } else if (type === 'SystemMessage') {
        if (m.sender !== undefined)
          return bad(`message ${i}: type must be "UserMessage" when sender is provided`);
      } else {
        return bad(`message ${i}: unknown type ${JSON.stringify(type)}`);
      }
      created.push({
        id: `msg_${(++this.messageCounter).toString(36).padStart(8, '0')}`,
        conversationId: convId,
        type,
        senderId: type === 'UserMessage' ? (m.sender as string) : null,
        text: m.text,
        custom: (m.custom as Record<string, string> | undefined) ?? {},
        createdAt: now,
        editedAt: null,
        referencedMessageId: typeof m.referencedMessageId === 'string' ? m.referencedMessageId : null,
        origin: 'rest',
        readBy: [],
        attachment: null,
        location: null,
      });
    }
    c.messages.push(...created);
    return ok(created.map((m) => ({ id: m.id })));
  }
}
