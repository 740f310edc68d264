import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeSalesforce, type FakeSalesforceOptions, startFakeSalesforce } from './index.js';

const V = '/services/data/v62.0';
const TOKEN = 'sess-1';
let now = 0;

interface Result {
  body: unknown;
  httpHeaders: Record<string, string>;
  httpStatusCode: number;
  referenceId: string;
}

interface Sub {
  method: string;
  url: string;
  referenceId: string;
  body?: unknown;
  httpHeaders?: Record<string, string>;
}

async function call(
  fake: FakeSalesforce,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; contentType?: string } = {},
) {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(opts.body === undefined ? {} : { 'content-type': opts.contentType ?? 'application/json' }),
    },
    ...(opts.body === undefined
      ? {}
      : { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text === '' ? undefined : JSON.parse(text) };
}

const composite = (fake: FakeSalesforce, compositeRequest: Sub[], extra: Record<string, unknown> = {}) =>
  call(fake, 'POST', `${V}/composite`, { body: { allOrNone: false, ...extra, compositeRequest } });

const byRef = (json: { compositeResponse: Result[] }) =>
  Object.fromEntries(json.compositeResponse.map((r) => [r.referenceId, r]));

const create = (i: number, type = 'Account'): Sub => ({
  method: 'POST',
  url: `${V}/sobjects/${type}`,
  referenceId: `new${i}`,
  body: { Name: `Acme ${i}` },
});

const OPTIONS: FakeSalesforceOptions = {
  tokens: [TOKEN, 'sess-2'],
  records: { Account: [{ Id: '001000000000001AAA', Name: 'Seeded', Industry: 'Energy' }] },
  apiLimit: { limit: 1000, windowMs: 1000 },
  clock: () => now,
  seed: 7,
};

describe('fake Salesforce', () => {
  let fake: FakeSalesforce;
  beforeAll(async () => {
    fake = await startFakeSalesforce(OPTIONS);
  });
  afterEach(() => {
    now = 0;
    fake.reset();
  });
  afterAll(() => fake.close());

  describe('sessions', () => {
    it('answers a missing, unknown or expired bearer token 401 INVALID_SESSION_ID, uncounted', async () => {
      const expected = [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }];
      for (const token of [null, 'nope']) {
        const r = await call(fake, 'GET', `${V}/sobjects/Account/001000000000001AAA`, { token });
        expect([r.status, r.json]).toEqual([401, expected]);
        expect(r.headers.get('sforce-limit-info')).toBeNull();
      }
      expect((await call(fake, 'GET', `${V}/sobjects/Account/001000000000001AAA`)).status).toBe(200);
      fake.expireSession(TOKEN);
      const c = await composite(fake, [create(1)]);
      expect([c.status, c.json]).toEqual([401, expected]);
      expect(
        (await call(fake, 'GET', `${V}/query?q=SELECT Id FROM Account`, { token: 'sess-2' })).status,
      ).toBe(200);
      expect(fake.stats.unauthorized).toBe(3);
      expect(fake.apiUsage().used).toBe(2);
      expect(fake.executed.some((e) => e.referenceId === 'new1')).toBe(false);
    });

    it('answers a path outside /services/data/vXX.X 404 NOT_FOUND', async () => {
      const r = await call(fake, 'GET', '/services/data/latest/sobjects');
      expect([r.status, r.json]).toEqual([
        404,
        [{ message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' }],
      ]);
    });
  });

  describe('single calls', () => {
    it('creates, reads, updates and deletes a record, each one API call', async () => {
      const made = await call(fake, 'POST', `${V}/sobjects/Account`, { body: { Name: 'Acme' } });
      expect(made.status).toBe(201);
      const id = made.json.id as string;
      expect(made.json).toEqual({ id, success: true, errors: [] });
      expect(id).toMatch(/^001[A-Za-z0-9]{15}$/);
      expect(made.headers.get('location')).toBe(`${V}/sobjects/Account/${id}`);
      expect(made.headers.get('sforce-limit-info')).toBe('api-usage=1/1000');

      const got = await call(fake, 'GET', `${V}/sobjects/Account/${id}?fields=Name`);
      expect(got.json).toEqual({
        attributes: { type: 'Account', url: `${V}/sobjects/Account/${id}` },
        Id: id,
        Name: 'Acme',
      });
      const patched = await call(fake, 'PATCH', `${V}/sobjects/Account/${id}`, { body: { Name: 'Acme 2' } });
      expect([patched.status, patched.text]).toEqual([204, '']);
      expect(fake.record('Account', id)?.Name).toBe('Acme 2');
      const deleted = await call(fake, 'DELETE', `${V}/sobjects/Account/${id}`);
      expect([deleted.status, deleted.text]).toEqual([204, '']);
      const gone = await call(fake, 'GET', `${V}/sobjects/Account/${id}`);
      expect([gone.status, gone.json[0].errorCode]).toEqual([404, 'NOT_FOUND']);
      expect(gone.headers.get('sforce-limit-info')).toBe('api-usage=5/1000');
      expect(fake.stats.singleCalls).toBe(5);
    });

    it('refuses unknown sObjects, wrong methods, Id in a body and bad JSON', async () => {
      expect((await call(fake, 'GET', `${V}/sobjects/Nope/001000000000001AAA`)).status).toBe(404);
      const wrong = await call(fake, 'POST', `${V}/sobjects/Account/001000000000001AAA`, { body: {} });
      expect([wrong.status, wrong.json[0].errorCode]).toEqual([405, 'METHOD_NOT_ALLOWED']);
      const withId = await call(fake, 'POST', `${V}/sobjects/Account`, { body: { Id: 'x' } });
      expect([withId.status, withId.json[0].errorCode]).toEqual([400, 'INVALID_FIELD_FOR_INSERT_UPDATE']);
      const bad = await call(fake, 'POST', `${V}/sobjects/Account`, { body: '{nope' });
      expect([bad.status, bad.json[0].errorCode]).toEqual([400, 'JSON_PARSER_ERROR']);
      expect((await call(fake, 'POST', `${V}/sobjects/Widget__c`, { body: { Name: 'w' } })).status).toBe(201);
    });

    it('answers a SOQL query, and MALFORMED_QUERY for what it cannot read', async () => {
      await call(fake, 'POST', `${V}/sobjects/Account`, { body: { Name: 'Acme', Industry: 'Energy' } });
      const q = encodeURIComponent("SELECT Id, Name FROM Account WHERE Industry = 'Energy' LIMIT 5");
      const r = await call(fake, 'GET', `${V}/query?q=${q}`);
      expect(r.status).toBe(200);
      expect(r.json.totalSize).toBe(2);
      expect(r.json.done).toBe(true);
      expect(r.json.records.map((x: { Name: string }) => x.Name).sort()).toEqual(['Acme', 'Seeded']);
      expect(r.json.records[0].attributes.type).toBe('Account');
      const limited = await call(
        fake,
        'GET',
        `${V}/query?q=${encodeURIComponent('SELECT Name FROM Account LIMIT 1')}`,
      );
      expect(limited.json.totalSize).toBe(1);
      expect(limited.json.records[0].Id).toBeUndefined();
      const bad = await call(fake, 'GET', `${V}/query?q=${encodeURIComponent('DELETE Account')}`);
      expect([bad.status, bad.json[0].errorCode]).toEqual([400, 'MALFORMED_QUERY']);
    });
  });

  describe('composite', () => {
    it('runs every subrequest and counts the whole composite as one API call', async () => {
      const r = await composite(fake, [
        create(1),
        create(2),
        { method: 'GET', url: `${V}/sobjects/Account/001000000000001AAA`, referenceId: 'read' },
        {
          method: 'PATCH',
          url: `${V}/sobjects/Account/001000000000001AAA`,
          referenceId: 'upd',
          body: { Name: 'X' },
        },
      ]);
      expect(r.status).toBe(200);
      expect(r.headers.get('sforce-limit-info')).toBe('api-usage=1/1000');
      const results = byRef(r.json);
      expect(Object.keys(results).sort()).toEqual(['new1', 'new2', 'read', 'upd']);
      expect(results.new1?.httpStatusCode).toBe(201);
      expect(results.new1?.httpHeaders.Location).toMatch(/^\/services\/data\/v62\.0\/sobjects\/Account\/001/);
      expect(results.read).toMatchObject({ httpStatusCode: 200, body: { Name: 'Seeded' } });
      expect(results.upd).toEqual({ body: null, httpHeaders: {}, httpStatusCode: 204, referenceId: 'upd' });
      expect(fake.record('Account', '001000000000001AAA')?.Name).toBe('X');
      expect(fake.apiUsage()).toEqual({ used: 1, limit: 1000 });
      expect(fake.stats.compositeSizes).toEqual([4]);
      expect(fake.executed.filter((e) => e.via === 'composite')).toHaveLength(4);
    });

    it('allOrNone false: a failing subrequest fails alone, the others commit', async () => {
      const r = await composite(fake, [
        create(1),
        { method: 'GET', url: `${V}/sobjects/Account/001000000000009AAA`, referenceId: 'missing' },
        create(2),
      ]);
      const results = byRef(r.json);
      expect(results.missing?.httpStatusCode).toBe(404);
      expect(results.missing?.body).toEqual([
        { message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' },
      ]);
      expect([results.new1?.httpStatusCode, results.new2?.httpStatusCode]).toEqual([201, 201]);
      expect(fake.record('Account', (results.new1?.body as { id: string }).id)).toBeDefined();
    });

    it('allOrNone true: one failure rolls back the rest, which answer 400 PROCESSING_HALTED', async () => {
      const r = await composite(
        fake,
        [
          create(1),
          { method: 'DELETE', url: `${V}/sobjects/Account/001000000000009AAA`, referenceId: 'missing' },
        ],
        { allOrNone: true },
      );
      const results = byRef(r.json);
      expect(results.missing?.httpStatusCode).toBe(404);
      expect(results.new1?.httpStatusCode).toBe(400);
      expect((results.new1?.body as Array<{ errorCode: string }>)[0]?.errorCode).toBe('PROCESSING_HALTED');
      const count = await call(fake, 'GET', `${V}/query?q=${encodeURIComponent('SELECT Id FROM Account')}`);
      expect(count.json.totalSize).toBe(1);
    });

    it('resolves @{ref.field} references, and does not run what depends on a failure', async () => {
      const r = await composite(fake, [
        create(1),
        {
          method: 'POST',
          url: `${V}/sobjects/Contact`,
          referenceId: 'c1',
          body: { LastName: 'L', AccountId: '@{new1.id}' },
        },
        { method: 'GET', url: `${V}/sobjects/Account/001000000000009AAA`, referenceId: 'missing' },
        {
          method: 'PATCH',
          url: `${V}/sobjects/Account/@{missing.Id}`,
          referenceId: 'dep',
          body: { Name: 'n' },
        },
        {
          method: 'POST',
          url: `${V}/sobjects/Contact`,
          referenceId: 'lit',
          body: { LastName: '@{nobody.id}' },
        },
      ]);
      const results = byRef(r.json);
      const accountId = (results.new1?.body as { id: string }).id;
      const contactId = (results.c1?.body as { id: string }).id;
      expect(fake.record('Contact', contactId)?.AccountId).toBe(accountId);
      expect(results.dep?.httpStatusCode).toBe(400);
      expect((results.dep?.body as Array<{ errorCode: string }>)[0]?.errorCode).toBe('PROCESSING_HALTED');
      expect(fake.executed.some((e) => e.referenceId === 'dep')).toBe(false);
      // A name that is no referenceId of the call is text, not a reference.
      expect(fake.record('Contact', (results.lit?.body as { id: string }).id)?.LastName).toBe('@{nobody.id}');
    });

    it('takes 25 subrequests, refuses 26 whole (nothing runs)', async () => {
      const ok = await composite(
        fake,
        Array.from({ length: 25 }, (_, i) => create(i)),
      );
      expect([ok.status, ok.json.compositeResponse.length]).toEqual([200, 25]);
      fake.reset();
      const over = await composite(
        fake,
        Array.from({ length: 26 }, (_, i) => create(i)),
      );
      expect([over.status, over.json[0].errorCode]).toEqual([400, 'LIMIT_EXCEEDED']);
      expect(fake.executed).toHaveLength(0);
      // Refused whole, the call still reached the org: it counts.
      expect(fake.apiUsage().used).toBe(1);
    });

    it('takes 5 query subrequests, refuses 6 whole', async () => {
      const query = (i: number, resource = 'query'): Sub => ({
        method: 'GET',
        url: `${V}/${resource}?q=${encodeURIComponent('SELECT Id FROM Account')}`,
        referenceId: `q${i}`,
      });
      const five = [query(1), query(2), query(3), query(4, 'queryAll'), query(5), create(1), create(2)];
      const ok = await composite(fake, five);
      expect(ok.status).toBe(200);
      expect(byRef(ok.json).q4?.httpStatusCode).toBe(200);
      const six = await composite(fake, [...five, query(6, 'queryAll')]);
      expect([six.status, six.json[0].errorCode]).toEqual([400, 'LIMIT_EXCEEDED']);
      const collections = await composite(fake, [
        ...five,
        { method: 'POST', url: `${V}/composite/sobjects`, referenceId: 'coll' },
      ]);
      expect(collections.status).toBe(400);
    });

    it.each<[string, unknown]>([
      ['a referenceId with a hyphen', [{ ...create(1), referenceId: 'new-1' }]],
      ['a referenceId with a dot', [{ ...create(1), referenceId: 'new.1' }]],
      ['no referenceId', [{ method: 'GET', url: `${V}/sobjects/Account` }]],
      ['a duplicate referenceId', [create(1), create(1)]],
      ['a lower-case method', [{ ...create(1), method: 'post' }]],
      ['no url', [{ method: 'GET', referenceId: 'r' }]],
      ['an Authorization header', [{ ...create(1), httpHeaders: { Authorization: 'Bearer x' } }]],
      ['a Content-Type header', [{ ...create(1), httpHeaders: { 'content-type': 'application/json' } }]],
      ['an Accept header', [{ ...create(1), httpHeaders: { ACCEPT: 'application/json' } }]],
      ['a header value that is not a string', [{ ...create(1), httpHeaders: { 'If-Match': 1 } }]],
      ['no subrequest', []],
    ])('refuses %s: 400 JSON_PARSER_ERROR, nothing runs', async (_, compositeRequest) => {
      const r = await composite(fake, compositeRequest as Sub[]);
      expect([r.status, r.json[0].errorCode]).toEqual([400, 'JSON_PARSER_ERROR']);
      expect(typeof r.json[0].message).toBe('string');
      expect(fake.executed).toHaveLength(0);
    });

    it('refuses a body without compositeRequest, a non-boolean allOrNone, bad JSON, a non-JSON type and GET', async () => {
      expect((await call(fake, 'POST', `${V}/composite`, { body: { requests: [] } })).status).toBe(400);
      expect((await composite(fake, [create(1)], { allOrNone: 'false' })).status).toBe(400);
      expect((await call(fake, 'POST', `${V}/composite`, { body: '{' })).json[0].errorCode).toBe(
        'JSON_PARSER_ERROR',
      );
      const typed = await call(fake, 'POST', `${V}/composite`, { body: '{}', contentType: 'text/plain' });
      expect(typed.status).toBe(415);
      expect((await call(fake, 'GET', `${V}/composite`)).status).toBe(405);
      expect(fake.executed).toHaveLength(0);
    });

    it('carries httpHeaders to the subrequest; allows a referenceId of letters, digits and _', async () => {
      const r = await composite(fake, [
        { ...create(1), referenceId: 'Op_0', httpHeaders: { 'Sforce-Auto-Assign': 'FALSE' } },
      ]);
      expect(byRef(r.json).Op_0?.httpStatusCode).toBe(201);
      expect(fake.executed[0]?.headers).toEqual({ 'sforce-auto-assign': 'FALSE' });
    });

    it('shuffles results by default and keeps request order when asked', async () => {
      const subs = Array.from({ length: 12 }, (_, i) => create(i));
      const shuffledOrder = (await composite(fake, subs)).json.compositeResponse.map(
        (r: Result) => r.referenceId,
      );
      expect(shuffledOrder).not.toEqual(subs.map((s) => s.referenceId));
      expect([...shuffledOrder].sort()).toEqual(subs.map((s) => s.referenceId).sort());
      const ordered = await startFakeSalesforce({ ...OPTIONS, answerOrder: 'request' });
      try {
        const r = await composite(ordered, subs, { collateSubrequests: false });
        expect(r.json.compositeResponse.map((x: Result) => x.referenceId)).toEqual(
          subs.map((s) => s.referenceId),
        );
        expect(ordered.executed.map((e) => e.referenceId)).toEqual(subs.map((s) => s.referenceId));
      } finally {
        await ordered.close();
      }
    });
  });

  describe('the API request limit', () => {
    it('refuses past the limit with 403 REQUEST_LIMIT_EXCEEDED until the rolling window frees a call', async () => {
      fake.setApiLimit({ limit: 3, windowMs: 1000 });
      now = 100;
      await composite(
        fake,
        Array.from({ length: 10 }, (_, i) => create(i)),
      );
      now = 200;
      await call(fake, 'GET', `${V}/sobjects/Account/001000000000001AAA`);
      now = 300;
      const third = await composite(fake, [create(11)]);
      expect(third.headers.get('sforce-limit-info')).toBe('api-usage=3/3');
      const over = await composite(fake, [create(12)]);
      expect([over.status, over.json]).toEqual([
        403,
        [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }],
      ]);
      expect(over.headers.get('sforce-limit-info')).toBe('api-usage=3/3');
      expect((await call(fake, 'GET', `${V}/sobjects/Account/001000000000001AAA`)).status).toBe(403);
      expect(fake.stats.overLimit).toBe(2);
      expect(fake.executed.some((e) => e.referenceId === 'new12')).toBe(false);
      now = 1099;
      expect((await composite(fake, [create(13)])).status).toBe(403);
      now = 1100;
      const freed = await composite(fake, [create(14)]);
      expect(freed.status).toBe(200);
      expect(freed.headers.get('sforce-limit-info')).toBe('api-usage=3/3');
      expect(fake.apiUsage()).toEqual({ used: 3, limit: 3 });
    });
  });

  describe('faults', () => {
    it('a whole-composite 5xx executes nothing; afterExecute executes and still answers 5xx', async () => {
      fake.faults.queue.push({ status: 503, retryAfterSec: 2 });
      const r = await composite(fake, [create(1)]);
      expect([r.status, r.headers.get('retry-after'), r.json[0].errorCode]).toEqual([
        503,
        '2',
        'SERVER_UNAVAILABLE',
      ]);
      expect(fake.executed).toHaveLength(0);
      fake.faults.queue.push({ status: 500, afterExecute: true });
      expect((await composite(fake, [create(2)])).status).toBe(500);
      expect(fake.executed.map((e) => e.referenceId)).toEqual(['new2']);
      expect(fake.stats.faultsApplied).toBe(2);
      expect((await call(fake, 'GET', `${V}/sobjects/Account/001000000000001AAA`)).status).toBe(200);
    });

    it('drops, duplicates, garbles and invents results on request', async () => {
      fake.faults.queue.push({
        dropReferenceIds: ['new1'],
        duplicateReferenceIds: ['new2'],
        unknownReferenceId: true,
      });
      const r = await composite(fake, [create(1), create(2)], {});
      const ids = r.json.compositeResponse.map((x: Result) => x.referenceId).sort();
      expect(ids).toEqual(['new2', 'new2', 'notSent']);
      expect(fake.executed).toHaveLength(2);
      fake.faults.queue.push({ badResultReferenceIds: ['new3'] });
      const g = await composite(fake, [create(3)]);
      expect(g.json.compositeResponse).toEqual([{ referenceId: 'new3', body: 'garbled' }]);
    });
  });
});
