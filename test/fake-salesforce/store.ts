// The records of the fake Salesforce org and the REST resources over them that both a single call and a
// composite subrequest reach: sObject create/get/update/delete and a small SOQL query.
//
// Shapes from the REST API Developer Guide: create answers 201 `{ id, success: true, errors: [] }` with a
// Location; get answers the record with `attributes: { type, url }`; update and delete answer 204 with
// no body; query answers `{ totalSize, done, records }`; errors are `[{ message, errorCode, fields? }]`
// ("Status Codes and Error Responses": 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED, 400 MALFORMED_QUERY).

export type SfRecord = Record<string, unknown>;

export interface SfResult {
  status: number;
  headers: Record<string, string>;
  /** null for 204 (what a composite result carries); undefined never. */
  body: unknown;
}

export interface StoreSeed {
  /** Accepted sObject names (default STANDARD_OBJECTS); any custom `X__c` name is accepted too. */
  sobjects?: string[];
  /** Records present at start, by sObject; an `Id` is generated when absent. */
  records?: Record<string, SfRecord[]>;
}

export const STANDARD_OBJECTS = ['Account', 'Contact', 'Lead', 'Opportunity', 'Case'];
const PREFIXES: Record<string, string> = {
  Account: '001',
  Contact: '003',
  Lead: '00Q',
  Opportunity: '006',
  Case: '500',
};

export function sfError(status: number, errorCode: string, message: string, fields?: string[]): SfResult {
  return {
    status,
    headers: {},
    body: [{ message, errorCode, ...(fields === undefined ? {} : { fields }) }],
  };
}

const notFound = () => sfError(404, 'NOT_FOUND', 'The requested resource does not exist');

const methodNotAllowed = (method: string, allowed: string) =>
  sfError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are ${allowed}`);

function isObject(v: unknown): v is SfRecord {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export interface Request {
  method: string;
  /** The whole path from `/services/data/vXX.X/`, with its query. */
  url: string;
  body: unknown;
}

export class SalesforceStore {
  readonly #seed: StoreSeed;
  readonly #sobjects: Set<string>;
  #records = new Map<string, Map<string, SfRecord>>();
  #nextId = 0;

  constructor(seed: StoreSeed = {}) {
    this.#seed = seed;
    this.#sobjects = new Set(seed.sobjects ?? STANDARD_OBJECTS);
    this.reset();
  }

  reset(): void {
    this.#records = new Map();
    this.#nextId = 0;
    for (const [type, records] of Object.entries(this.#seed.records ?? {})) {
      for (const r of records) this.#insert(type, { ...r });
    }
  }

  /** A copy to roll back to (allOrNone: true). */
  snapshot(): () => void {
    const copy = new Map(
      [...this.#records].map(([t, m]) => [t, new Map([...m].map(([id, r]) => [id, { ...r }]))]),
    );
    const next = this.#nextId;
    return () => {
      this.#records = copy;
      this.#nextId = next;
    };
  }

  /** A record by sObject and id, for tests. */
  get(type: string, id: string): SfRecord | undefined {
    return this.#records.get(type)?.get(id);
  }

  count(type: string): number {
    return this.#records.get(type)?.size ?? 0;
  }

  #known(type: string): boolean {
    return this.#sobjects.has(type) || /^[A-Za-z][A-Za-z0-9_]*__c$/.test(type);
  }

  #newId(type: string): string {
    const n = String(++this.#nextId).padStart(7, '0');
    return `${PREFIXES[type] ?? 'a00'}R0000${n}AAA`;
  }

  #insert(type: string, fields: SfRecord): string {
    const id = typeof fields.Id === 'string' ? fields.Id : this.#newId(type);
    let table = this.#records.get(type);
    if (!table) {
      table = new Map();
      this.#records.set(type, table);
    }
    table.set(id, { ...fields, Id: id });
    return id;
  }

  /** Runs one request on a path `/services/data/vXX.X/...`. */
  execute(req: Request): SfResult {
    const m = /^\/services\/data\/(v\d+\.\d+)(\/[^?]*)?(?:\?(.*))?$/.exec(req.url);
    if (!m) return notFound();
    const version = m[1] as string;
    const rest = (m[2] ?? '/').replace(/\/$/, '');
    const query = new URLSearchParams(m[3] ?? '');
    if (rest === '/query' || rest === '/queryAll') {
      if (req.method !== 'GET') return methodNotAllowed(req.method, 'GET,HEAD');
      return this.#query(version, query.get('q'));
    }
    const s = /^\/sobjects\/([^/]+)(?:\/([^/]+))?$/.exec(rest);
    if (!s) return notFound();
    const type = decodeURIComponent(s[1] as string);
    if (!this.#known(type)) return notFound();
    const id = s[2] === undefined ? undefined : decodeURIComponent(s[2]);
    return id === undefined
      ? this.#collection(version, type, req)
      : this.#record(version, type, id, req, query);
  }

  #collection(version: string, type: string, req: Request): SfResult {
    if (req.method === 'GET') {
      return { status: 200, headers: {}, body: { objectDescribe: { name: type }, recentItems: [] } };
    }
    if (req.method !== 'POST') return methodNotAllowed(req.method, 'GET,HEAD,POST');
    if (!isObject(req.body))
      return sfError(400, 'JSON_PARSER_ERROR', 'The request body must be a JSON object');
    if (Object.hasOwn(req.body, 'Id')) {
      return sfError(400, 'INVALID_FIELD_FOR_INSERT_UPDATE', 'Unable to create/update fields: Id.', ['Id']);
    }
    const id = this.#insert(type, req.body);
    return {
      status: 201,
      headers: { Location: `/services/data/${version}/sobjects/${type}/${id}` },
      body: { id, success: true, errors: [] },
    };
  }

  #record(version: string, type: string, id: string, req: Request, query: URLSearchParams): SfResult {
    const table = this.#records.get(type);
    const record = table?.get(id);
    if (!['GET', 'PATCH', 'DELETE'].includes(req.method))
      return methodNotAllowed(req.method, 'HEAD,GET,PATCH,DELETE');
    if (!table || !record) return notFound();
    if (req.method === 'GET') {
      const fields = query
        .get('fields')
        ?.split(',')
        .map((f) => f.trim());
      return { status: 200, headers: {}, body: this.#view(version, type, record, fields) };
    }
    if (req.method === 'DELETE') {
      table.delete(id);
      return { status: 204, headers: {}, body: null };
    }
    if (!isObject(req.body))
      return sfError(400, 'JSON_PARSER_ERROR', 'The request body must be a JSON object');
    if (Object.hasOwn(req.body, 'Id')) {
      return sfError(400, 'INVALID_FIELD_FOR_INSERT_UPDATE', 'Unable to create/update fields: Id.', ['Id']);
    }
    table.set(id, { ...record, ...req.body, Id: id });
    return { status: 204, headers: {}, body: null };
  }

  #view(version: string, type: string, record: SfRecord, fields?: string[]): SfRecord {
    const picked = fields
      ? Object.fromEntries(['Id', ...fields.filter((f) => f !== 'Id')].map((f) => [f, record[f] ?? null]))
      : record;
    return {
      attributes: { type, url: `/services/data/${version}/sobjects/${type}/${record.Id}` },
      ...picked,
    };
  }

  /** `SELECT a, b FROM Type [WHERE f = 'v' [AND ...]] [LIMIT n]`; anything else is MALFORMED_QUERY. */
  #query(version: string, soql: string | null): SfResult {
    const m = /^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*$/i.exec(
      soql ?? '',
    );
    if (!m) return sfError(400, 'MALFORMED_QUERY', `unexpected token: ${soql ?? '(no q)'}`);
    const fields = (m[1] as string).split(',').map((f) => f.trim());
    const type = m[2] as string;
    if (!this.#known(type)) {
      return sfError(400, 'INVALID_TYPE', `sObject type '${type}' is not supported.`);
    }
    const conditions: Array<[string, unknown]> = [];
    for (const part of m[3] ? m[3].split(/\s+AND\s+/i) : []) {
      const c = /^(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(-?\d+(?:\.\d+)?)|(true|false|null))$/i.exec(
        part.trim(),
      );
      if (!c) return sfError(400, 'MALFORMED_QUERY', `unexpected token: ${part.trim()}`);
      const literal =
        c[2] ?? (c[3] !== undefined ? Number(c[3]) : JSON.parse((c[4] as string).toLowerCase()));
      conditions.push([c[1] as string, literal]);
    }
    let records = [...(this.#records.get(type)?.values() ?? [])].filter((r) =>
      conditions.every(([f, v]) => (r[f] ?? null) === v),
    );
    if (m[4] !== undefined) records = records.slice(0, Number(m[4]));
    return {
      status: 200,
      headers: {},
      body: {
        totalSize: records.length,
        done: true,
        records: records.map((r) => {
          const { Id: _id, ...rest } = this.#view(version, type, r, fields);
          return fields.includes('Id') ? { ...rest, Id: r.Id } : rest;
        }),
      },
    };
  }
}
