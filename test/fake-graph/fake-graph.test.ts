import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type FakeGraph,
  type FakeGraphCall,
  type FakeGraphOptions,
  forgeGraphToken,
  signGraphToken,
  startFakeGraph,
} from './index.js';

const ALICE = 'Bearer tok-alice';
const APP = 'Bearer tok-app';
const FAB = 'Bearer tok-fab';

const TENANTS: FakeGraphOptions['tenants'] = {
  contoso: {
    tokens: { 'tok-alice': 'alice', 'tok-bob': 'bob', 'tok-app': null },
    users: { carol: { displayName: 'Carol' } },
    groups: { g1: { displayName: 'Team', members: ['alice'] } },
  },
  fabrikam: { tokens: { 'tok-fab': 'zed' } },
};

interface Sub {
  id: string;
  status: number;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
}

interface Req {
  id: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  dependsOn?: string[];
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function call(
  fake: FakeGraph,
  method: string,
  path: string,
  opts: { auth?: string | null; body?: unknown; headers?: Record<string, string> } = {},
) {
  const auth = opts.auth === undefined ? ALICE : opts.auth;
  return fetch(`${fake.url}${path}`, {
    method,
    headers: {
      ...(auth === null ? {} : { authorization: auth }),
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...opts.headers,
    },
    ...(opts.body === undefined
      ? {}
      : { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) }),
  });
}

function batch(fake: FakeGraph, requests: unknown, auth: string = ALICE, version = 'v1.0') {
  return call(fake, 'POST', `/${version}/$batch`, {
    auth,
    body: Array.isArray(requests) ? { requests } : requests,
  });
}

async function batchById(fake: FakeGraph, requests: Req[], auth = ALICE): Promise<Map<string, Sub>> {
  const res = await batch(fake, requests, auth);
  expect(res.status).toBe(200);
  const { responses } = (await res.json()) as { responses: Sub[] };
  expect(responses).toHaveLength(requests.length);
  return new Map(responses.map((r) => [r.id, r]));
}

const gets = (n: number, url = '/me'): Req[] =>
  Array.from({ length: n }, (_, i) => ({ id: String(i + 1), method: 'GET', url }));

describe('fake graph', () => {
  let fake: FakeGraph;
  beforeAll(async () => {
    fake = await startFakeGraph({ tenants: TENANTS, seed: 42 });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.reset());

  describe('auth', () => {
    it.each([
      ['no header', null],
      ['an unknown token', 'Bearer nope'],
      ['not bearer', 'Basic tok-alice'],
    ])('answers 401 for %s, on single and batch calls, and executes nothing', async (_name, auth) => {
      const single = await call(fake, 'GET', '/v1.0/me', { auth });
      expect(single.status).toBe(401);
      expect(await single.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
      expect((await batch(fake, gets(2), auth ?? '')).status).toBe(401);
      expect(fake.stats.unauthorized).toBe(2);
      expect(fake.stats.batchCalls + fake.stats.singleCalls).toBe(0);
      expect(fake.executed).toEqual([]);
    });

    it('maps each token to its tenant and user, and keeps tenants apart', async () => {
      expect(await (await call(fake, 'GET', '/v1.0/me')).json()).toMatchObject({ id: 'alice' });
      expect(await (await call(fake, 'GET', '/v1.0/me', { auth: 'Bearer tok-bob' })).json()).toMatchObject({
        id: 'bob',
      });
      expect((await call(fake, 'GET', '/v1.0/users/carol')).status).toBe(200);
      expect((await call(fake, 'GET', '/v1.0/users/carol', { auth: FAB })).status).toBe(404);
      expect(fake.executed.map((e) => [e.tenant, e.credential])).toEqual([
        ['contoso', ALICE],
        ['contoso', 'Bearer tok-bob'],
        ['contoso', ALICE],
        ['fabrikam', FAB],
      ]);
    });

    it('refuses /me for an app-only token', async () => {
      const res = await call(fake, 'GET', '/v1.0/me', { auth: APP });
      expect(res.status).toBe(400);
      expect((await call(fake, 'GET', '/v1.0/users/alice', { auth: APP })).status).toBe(200);
    });
  });

  describe('resources through single calls', () => {
    it('creates a user with 201 + Location, patches it (204, new ETag), deletes it (204), then 404', async () => {
      const created = await call(fake, 'POST', '/v1.0/users', {
        body: { displayName: 'Dan', userPrincipalName: 'dan@contoso.com', jobTitle: 'Dev' },
      });
      expect(created.status).toBe(201);
      const user = (await created.json()) as { id: string; '@odata.context': string };
      expect(user).toMatchObject({ displayName: 'Dan', jobTitle: 'Dev' });
      expect(user['@odata.context']).toBe(`${fake.url}/v1.0/$metadata#users/$entity`);
      const location = created.headers.get('location');
      expect(location).toBe(`${fake.url}/v1.0/users/${user.id}`);
      const etag1 = created.headers.get('etag');
      expect(etag1).toMatch(/^W\/"/);

      const patched = await call(fake, 'PATCH', `/v1.0/users/${user.id}`, { body: { jobTitle: 'Lead' } });
      expect(patched.status).toBe(204);
      expect(await patched.text()).toBe('');
      const got = await call(fake, 'GET', new URL(location ?? '').pathname);
      expect(await got.json()).toMatchObject({ jobTitle: 'Lead' });
      expect(got.headers.get('etag')).not.toBe(etag1);

      expect((await call(fake, 'DELETE', `/v1.0/users/${user.id}`)).status).toBe(204);
      const gone = await call(fake, 'GET', `/v1.0/users/${user.id}`);
      expect(gone.status).toBe(404);
      expect(await gone.json()).toMatchObject({ error: { code: 'Request_ResourceNotFound' } });
      expect(fake.executed.map((e) => [e.method, e.status, e.via])).toEqual([
        ['POST', 201, 'single'],
        ['PATCH', 204, 'single'],
        ['GET', 200, 'single'],
        ['DELETE', 204, 'single'],
        ['GET', 404, 'single'],
      ]);
    });

    it('finds a user by userPrincipalName and refuses a duplicate one', async () => {
      expect((await call(fake, 'GET', '/v1.0/users/carol@contoso.onmicrosoft.com')).status).toBe(200);
      const dup = await call(fake, 'POST', '/v1.0/users', {
        body: { displayName: 'C2', userPrincipalName: 'CAROL@contoso.onmicrosoft.com' },
      });
      expect(dup.status).toBe(400);
    });

    it('keeps messages: 201 + Location, newest first, If-Match 412 on a stale ETag, DELETE 204', async () => {
      const ids: string[] = [];
      for (const subject of ['one', 'two', 'three']) {
        const res = await call(fake, 'POST', '/v1.0/me/messages', { body: { subject } });
        expect(res.status).toBe(201);
        expect(res.headers.get('location')).toMatch(/\/v1\.0\/users\/alice\/messages\/AAMk/);
        ids.push(((await res.json()) as { id: string }).id);
      }
      const list = (await (await call(fake, 'GET', '/v1.0/users/alice/messages?$top=2')).json()) as {
        value: { subject: string }[];
      };
      expect(list.value.map((m) => m.subject)).toEqual(['three', 'two']);
      const one = await call(fake, 'GET', `/v1.0/me/messages/${ids[0]}`);
      const etag = one.headers.get('etag') ?? '';
      expect(await one.json()).toMatchObject({ subject: 'one', '@odata.etag': etag });

      const ok = await call(fake, 'PATCH', `/v1.0/me/messages/${ids[0]}`, {
        body: { isRead: true },
        headers: { 'if-match': etag },
      });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ isRead: true });
      const stale = await call(fake, 'PATCH', `/v1.0/me/messages/${ids[0]}`, {
        body: { isRead: false },
        headers: { 'if-match': etag },
      });
      expect(stale.status).toBe(412);
      expect((await call(fake, 'DELETE', `/v1.0/me/messages/${ids[0]}`)).status).toBe(204);
      expect((await call(fake, 'GET', `/v1.0/me/messages/${ids[0]}`)).status).toBe(404);
      expect((await call(fake, 'GET', '/v1.0/users/nobody/messages')).status).toBe(404);
    });

    it('lists, adds ($ref, 204) and removes group members, and refuses a duplicate add', async () => {
      const list = async () =>
        (
          (await (await call(fake, 'GET', '/v1.0/groups/g1/members')).json()) as { value: { id: string }[] }
        ).value.map((m) => m.id);
      expect(await list()).toEqual(['alice']);
      const ref = { '@odata.id': 'https://graph.microsoft.com/v1.0/directoryObjects/bob' };
      expect((await call(fake, 'POST', '/v1.0/groups/g1/members/$ref', { body: ref })).status).toBe(204);
      expect((await call(fake, 'POST', '/v1.0/groups/g1/members/$ref', { body: ref })).status).toBe(400);
      expect(await list()).toEqual(['alice', 'bob']);
      expect((await call(fake, 'DELETE', '/v1.0/groups/g1/members/alice/$ref')).status).toBe(204);
      expect(await list()).toEqual(['bob']);
      expect((await call(fake, 'GET', '/v1.0/groups/nope/members')).status).toBe(404);
    });

    it('answers 400 for an unknown segment or version, 405 for a wrong method', async () => {
      const seg = await call(fake, 'GET', '/v1.0/nonsense');
      expect(seg.status).toBe(400);
      expect(await seg.json()).toMatchObject({ error: { code: 'BadRequest' } });
      expect((await call(fake, 'GET', '/v2.0/me')).status).toBe(400);
      expect((await call(fake, 'PUT', '/v1.0/users', { body: {} })).status).toBe(405);
    });

    it('compares paths case-insensitively, as Graph does: /ME/Messages is /me/messages', async () => {
      const created = await call(fake, 'POST', '/v1.0/me/messages', { body: { subject: 'hi' } });
      expect(created.status).toBe(201);
      const listed = await call(fake, 'GET', '/v1.0/ME/Messages');
      expect(listed.status).toBe(200);
      expect(await listed.json()).toMatchObject({ value: [{ subject: 'hi' }] });
      expect(await (await call(fake, 'GET', '/v1.0/Users/ALICE')).json()).toMatchObject({ id: 'alice' });
      expect((await call(fake, 'GET', '/v1.0/Groups/g1/Members')).status).toBe(200);
    });

    it('serves beta too and records the version', async () => {
      expect((await call(fake, 'GET', '/beta/me')).status).toBe(200);
      expect(fake.executed[0]).toMatchObject({ version: 'beta', path: '/me', url: '/me' });
    });

    it('requires ConsistencyLevel: eventual for $count on users', async () => {
      expect((await call(fake, 'GET', '/v1.0/users?$count=true')).status).toBe(400);
      const res = await call(fake, 'GET', '/v1.0/users?$count=true&$select=displayName', {
        headers: { ConsistencyLevel: 'eventual' },
      });
      const body = (await res.json()) as { '@odata.count': number; value: Record<string, unknown>[] };
      expect(body['@odata.count']).toBe(3);
      expect(Object.keys(body.value[0] ?? {}).sort()).toEqual(['displayName', 'id']);
      expect(fake.executed.at(-1)?.headers.consistencylevel).toBe('eventual');
      expect(fake.executed.at(-1)?.query).toEqual({ $count: 'true', $select: 'displayName' });
    });

    it('refuses a non-JSON body (415), malformed JSON (400) and a missing body (400)', async () => {
      const text = await fetch(`${fake.url}/v1.0/me`, {
        method: 'PATCH',
        headers: { authorization: ALICE, 'content-type': 'text/plain' },
        body: 'city=Redmond',
      });
      expect(text.status).toBe(415);
      expect((await call(fake, 'PATCH', '/v1.0/me', { body: '{"city":' })).status).toBe(400);
      expect((await call(fake, 'POST', '/v1.0/me/messages')).status).toBe(400);
    });
  });

  describe('$batch', () => {
    it('runs a mixed batch: one response per id, with each response its own status, headers and body', async () => {
      const byId = await batchById(fake, [
        { id: '1', method: 'GET', url: '/me' },
        { id: '2', method: 'GET', url: 'users/carol?$select=displayName' },
        { id: '3', method: 'POST', url: '/me/messages', headers: JSON_HEADERS, body: { subject: 'hi' } },
        { id: '4', method: 'PATCH', url: '/me', headers: JSON_HEADERS, body: { city: 'Redmond' } },
        { id: '5', method: 'DELETE', url: '/groups/g1/members/alice/$ref' },
        { id: '6', method: 'GET', url: '/users/ghost' },
        {
          id: '7',
          method: 'GET',
          url: '/users?$count=true&$top=1',
          headers: { ConsistencyLevel: 'eventual' },
        },
      ]);
      expect(byId.get('1')).toMatchObject({ status: 200, body: { id: 'alice' } });
      expect(byId.get('1')?.headers?.ETag).toMatch(/^W\//);
      expect(byId.get('2')?.body).toEqual({
        '@odata.context': `${fake.url}/v1.0/$metadata#users/$entity`,
        '@odata.etag': expect.any(String),
        id: 'carol',
        displayName: 'Carol',
      });
      expect(byId.get('3')?.status).toBe(201);
      expect(byId.get('3')?.headers?.Location).toMatch(/\/v1\.0\/users\/alice\/messages\//);
      expect(byId.get('4')).toEqual({ id: '4', status: 204, headers: {} });
      expect(byId.get('5')?.status).toBe(204);
      expect(byId.get('6')).toMatchObject({
        status: 404,
        body: { error: { code: 'Request_ResourceNotFound' } },
      });
      expect(byId.get('7')).toMatchObject({ status: 200, body: { '@odata.count': 3 } });
      expect(fake.stats.batchSizes).toEqual([7]);
      expect(fake.executed).toHaveLength(7);
      expect(new Set(fake.executed.map((e) => e.callId))).toEqual(new Set([1]));
      const post = fake.executed.find((e) => e.requestId === '3');
      expect(post).toMatchObject({
        via: 'batch',
        method: 'POST',
        url: '/me/messages',
        path: '/me/messages',
        headers: { 'content-type': 'application/json' },
        body: { subject: 'hi' },
        status: 201,
        credential: ALICE,
        version: 'v1.0',
      });
      // The batch really changed the store.
      expect(await (await call(fake, 'GET', '/v1.0/me')).json()).toMatchObject({ city: 'Redmond' });
    });

    it('takes 20 requests and refuses 21 with a 400 for the whole batch, executing none', async () => {
      const res = await batch(fake, gets(21));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'BadRequest' } });
      expect(fake.executed).toEqual([]);
      expect(fake.stats.batchSizes).toEqual([]);
      await batchById(fake, gets(20));
      expect(fake.executed).toHaveLength(20);
    });

    it.each([
      ['duplicate ids', [gets(1)[0], { id: '1', method: 'GET', url: '/me' }]],
      [
        'ids equal but for case',
        [
          { id: 'a', method: 'GET', url: '/me' },
          { id: 'A', method: 'GET', url: '/me' },
        ],
      ],
      ['a numeric id', [{ id: 1, method: 'GET', url: '/me' }]],
      ['an empty id', [{ id: '', method: 'GET', url: '/me' }]],
      ['an unknown method', [{ id: '1', method: 'HEAD', url: '/me' }]],
      ['no url', [{ id: '1', method: 'GET' }]],
      ['non-string header values', [{ id: '1', method: 'GET', url: '/me', headers: { 'x-n': 1 } }]],
      ['no requests', []],
      ['no requests array', { value: gets(1) }],
    ])('answers 400 for the whole batch with %s', async (_name, requests) => {
      const res = await batch(fake, requests);
      expect(res.status).toBe(400);
      expect(fake.executed).toEqual([]);
    });

    it('serves $batch on beta and percent-encoded, and refuses a GET on it with 405', async () => {
      expect((await batch(fake, gets(1), ALICE, 'beta')).status).toBe(200);
      expect(fake.executed[0]).toMatchObject({ version: 'beta', via: 'batch' });
      const encoded = await call(fake, 'POST', '/v1.0/%24batch', { body: { requests: gets(1) } });
      expect(encoded.status).toBe(200);
      expect((await call(fake, 'GET', '/v1.0/$batch')).status).toBe(405);
      expect(fake.executed).toHaveLength(2);
    });

    it('answers 400 for malformed JSON and 415 for a non-JSON $batch body', async () => {
      expect((await call(fake, 'POST', '/v1.0/$batch', { body: '{"requests":[' })).status).toBe(400);
      const text = await fetch(`${fake.url}/v1.0/$batch`, {
        method: 'POST',
        headers: { authorization: ALICE, 'content-type': 'text/plain' },
        body: JSON.stringify({ requests: gets(1) }),
      });
      expect(text.status).toBe(415);
      expect(fake.executed).toEqual([]);
    });

    describe('Content-Type rule (a body needs a Content-Type; a write needs both)', () => {
      it.each([
        [
          'a POST with a body but no headers',
          { id: '2', method: 'POST', url: '/me/messages', body: { subject: 'x' } },
        ],
        [
          'a PATCH whose headers lack Content-Type',
          { id: '2', method: 'PATCH', url: '/me', headers: { 'If-Match': '*' }, body: { city: 'x' } },
        ],
        [
          'a POST with Content-Type but no body',
          { id: '2', method: 'POST', url: '/me/messages', headers: JSON_HEADERS },
        ],
        [
          'a DELETE with a body but no Content-Type',
          { id: '2', method: 'DELETE', url: '/me/messages/x', body: {} },
        ],
      ])('fails the whole batch for %s; the valid request beside it does not run', async (_name, bad) => {
        const res = await batch(fake, [{ id: '1', method: 'GET', url: '/me' }, bad]);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({
          error: {
            code: 'BadRequest',
            message: 'Write request id : 2 does not contain Content-Type header or body.',
          },
        });
        expect(fake.executed).toEqual([]);
      });

      it('accepts the header in any case, a GET and a DELETE without headers', async () => {
        const byId = await batchById(fake, [
          {
            id: '1',
            method: 'PATCH',
            url: '/me',
            headers: { 'content-type': 'application/json' },
            body: { city: 'A' },
          },
          { id: '2', method: 'GET', url: '/me' },
          { id: '3', method: 'DELETE', url: '/users/carol' },
        ]);
        expect([...byId.values()].map((r) => r.status).sort()).toEqual([200, 204, 204]);
      });

      it('carries a non-JSON body base64url-encoded and hands the bytes to the resource', async () => {
        const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);
        const byId = await batchById(fake, [
          {
            id: '1',
            method: 'POST',
            url: '/me/messages',
            headers: { 'Content-Type': 'image/jpeg' },
            body: bytes.toString('base64url'),
          },
        ]);
        // The message resource takes JSON only.
        expect(byId.get('1')?.status).toBe(415);
        expect(Buffer.isBuffer(fake.executed[0]?.body)).toBe(true);
        expect((fake.executed[0]?.body as Buffer).equals(bytes)).toBe(true);
      });
    });

    it('answers 400 for one request whose url is absolute, and runs the others', async () => {
      const byId = await batchById(fake, [
        { id: '1', method: 'GET', url: 'https://graph.microsoft.com/v1.0/me' },
        { id: '2', method: 'GET', url: '/me' },
      ]);
      expect(byId.get('1')?.status).toBe(400);
      expect(byId.get('2')?.status).toBe(200);
      expect(fake.executed.map((e) => e.requestId)).toEqual(['2']);
    });

    it('answers and executes in random order, reproducibly per seed', async () => {
      const requests = Array.from({ length: 12 }, (_, i) => ({
        id: `r${i}`,
        method: 'POST',
        url: '/me/messages',
        headers: JSON_HEADERS,
        body: { subject: `s${i}` },
      }));
      const sent = requests.map((r) => r.id).join();
      const answerOrders: string[] = [];
      const execOrders: string[] = [];
      for (let i = 0; i < 3; i++) {
        fake.executed.length = 0;
        const res = await batch(fake, requests);
        answerOrders.push(((await res.json()) as { responses: Sub[] }).responses.map((r) => r.id).join());
        execOrders.push(fake.executed.map((e) => e.requestId).join());
      }
      expect(answerOrders.some((o) => o !== sent)).toBe(true);
      expect(execOrders.some((o) => o !== sent)).toBe(true);
      expect(new Set(execOrders).size).toBeGreaterThan(1);
      for (const o of [...answerOrders, ...execOrders])
        expect(o.split(',').sort()).toEqual([...sent.split(',')].sort());

      const twin = await startFakeGraph({ tenants: TENANTS, seed: 42 });
      try {
        fake.reset();
        const a = await (await batch(fake, requests)).json();
        const b = await (await batch(twin, requests)).json();
        expect(JSON.stringify(b).replaceAll(twin.url, '')).toBe(JSON.stringify(a).replaceAll(fake.url, ''));
        expect(twin.executed.map((e) => e.requestId)).toEqual(fake.executed.map((e) => e.requestId));
      } finally {
        await twin.close();
      }
    });

    describe('dependsOn', () => {
      const post = (id: string, dependsOn?: string[]): Req => ({
        id,
        method: 'POST',
        url: '/me/messages',
        headers: JSON_HEADERS,
        body: { subject: id },
        ...(dependsOn ? { dependsOn } : {}),
      });

      it('runs a serial chain in its order (the documented 1 → 2 → 4 → 3), every time, answering in any order', async () => {
        const chain = [post('1'), post('2', ['1']), post('4', ['2']), post('3', ['4'])];
        const answerOrders = new Set<string>();
        for (let i = 0; i < 5; i++) {
          fake.executed.length = 0;
          const byId = await batchById(fake, chain);
          expect([...byId.values()].every((r) => r.status === 201)).toBe(true);
          expect(fake.executed.map((e) => e.requestId)).toEqual(['1', '2', '4', '3']);
          answerOrders.add([...byId.keys()].join());
        }
        // Execution order is fixed here, so this sees the answer shuffle alone.
        expect(answerOrders.size).toBeGreaterThan(1);
      });

      it('runs the shared dependency first when all depend on one, the rest in any order', async () => {
        const star = [post('root'), ...Array.from({ length: 8 }, (_, i) => post(`d${i}`, ['ROOT']))];
        const orders = new Set<string>();
        for (let i = 0; i < 4; i++) {
          fake.executed.length = 0;
          await batchById(fake, star);
          expect(fake.executed[0]?.requestId).toBe('root');
          orders.add(fake.executed.map((e) => e.requestId).join());
        }
        expect(orders.size).toBeGreaterThan(1);
      });

      it('answers 424 for everything after a failed request in a chain, without running it', async () => {
        const byId = await batchById(fake, [
          post('1'),
          { id: '2', method: 'GET', url: '/users/ghost', dependsOn: ['1'] },
          post('3', ['2']),
          post('4', ['3']),
        ]);
        expect(byId.get('1')?.status).toBe(201);
        expect(byId.get('2')?.status).toBe(404);
        expect(byId.get('3')).toMatchObject({ status: 424, body: { error: { code: 'FailedDependency' } } });
        expect(byId.get('4')?.status).toBe(424);
        expect(fake.executed.map((e) => e.requestId)).toEqual(['1', '2']);
        expect(fake.stats.failedDependency).toBe(2);
      });

      it('answers 424 to every dependent when the shared dependency fails', async () => {
        const byId = await batchById(fake, [
          { id: 'root', method: 'PATCH', url: '/users/ghost', headers: JSON_HEADERS, body: {} },
          post('a', ['root']),
          post('b', ['root']),
        ]);
        expect([byId.get('root')?.status, byId.get('a')?.status, byId.get('b')?.status]).toEqual([
          404, 424, 424,
        ]);
        expect(fake.executed).toHaveLength(1);
      });

      it.each([
        ['a tree (fully neither)', [post('1'), post('2', ['1']), post('3', ['2']), post('4', ['1'])]],
        ['two dependencies', [post('1'), post('2'), post('3', ['1', '2'])]],
        ['two roots and one dependent', [post('1'), post('2'), post('3', ['1'])]],
        ['a dependency on a later request', [post('1', ['2']), post('2')]],
        ['a dependency on an unknown id', [post('1'), post('2', ['9'])]],
        ['a self-dependency', [post('1'), post('2', ['2'])]],
        ['dependsOn that is not an array of strings', [post('1'), { ...post('2'), dependsOn: '1' }]],
      ])('answers 400 for the whole batch with %s', async (_name, requests) => {
        const res = await batch(fake, requests);
        expect(res.status).toBe(400);
        expect(fake.executed).toEqual([]);
      });
    });
  });

  describe('faults', () => {
    const reqs = [
      { id: '1', method: 'GET', url: '/me' },
      { id: '2', method: 'GET', url: '/users/carol' },
    ];

    it('status: 503 without executing; afterExecute executes first; Retry-After when asked', async () => {
      fake.faults.queue.push({ status: 503, retryAfterSec: 7 }, { status: 502, afterExecute: true });
      const first = await batch(fake, reqs);
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).toBe('7');
      expect(fake.executed).toEqual([]);
      expect((await batch(fake, reqs)).status).toBe(502);
      expect(fake.executed).toHaveLength(2);
      expect((await batch(fake, reqs)).status).toBe(200);
      expect(fake.stats.faultsApplied).toBe(2);
      expect(fake.stats.throttled).toEqual({ batchCall: 0, singleCall: 0, inBatch: 0 });
    });

    it('delayMs: executes at once and answers late', async () => {
      fake.faults.queue.push({ delayMs: 200 });
      let settled = false;
      const t0 = performance.now();
      const pending = batch(fake, reqs).finally(() => {
        settled = true;
      });
      await vi.waitFor(() => expect(fake.executed).toHaveLength(2), { interval: 5 });
      expect(settled).toBe(false);
      expect((await pending).status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(199);
    });

    it('reset before-execute runs nothing; after-execute runs everything; both leave no answer', async () => {
      fake.faults.queue.push({ reset: 'before-execute' }, { reset: 'after-execute' });
      await expect(batch(fake, reqs)).rejects.toThrow();
      expect(fake.executed).toEqual([]);
      await expect(batch(fake, reqs)).rejects.toThrow();
      expect(fake.executed).toHaveLength(2);
    });

    it('truncateBody and notJson', async () => {
      fake.faults.queue.push({ truncateBody: true }, { notJson: true });
      const cut = await batch(fake, reqs);
      expect(cut.status).toBe(200);
      await expect(cut.text()).rejects.toThrow();
      const html = await batch(fake, reqs);
      expect(html.headers.get('content-type')).toBe('text/html');
      expect(fake.executed).toHaveLength(4);
    });

    it('drops, duplicates and invents responses', async () => {
      fake.faults.queue.push(
        { dropResponseIds: ['2'] },
        { duplicateResponseIds: ['1'] },
        { unknownResponseId: true },
      );
      const ids = async () =>
        ((await (await batch(fake, reqs)).json()) as { responses: Sub[] }).responses.map((r) => r.id).sort();
      expect(await ids()).toEqual(['1']);
      expect(await ids()).toEqual(['1', '1', '2']);
      expect(await ids()).toEqual(['1', '2', 'not-sent']);
      expect(fake.executed).toHaveLength(6);
    });

    it('targets batch calls by default, single calls with on, one tenant with tenant', async () => {
      fake.faults.queue.push({ status: 500, tenant: 'fabrikam' }, { status: 502, on: 'single' });
      expect((await batch(fake, reqs)).status).toBe(200);
      expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(502);
      expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(200);
      expect((await batch(fake, gets(1), FAB)).status).toBe(500);
      expect(fake.faults.queue).toEqual([]);
    });

    it('always applies until cleared; random applies with its probability', async () => {
      fake.faults.always = { status: 503 };
      expect((await batch(fake, reqs)).status).toBe(503);
      expect((await batch(fake, reqs)).status).toBe(503);
      fake.faults.always = undefined;
      expect((await batch(fake, reqs)).status).toBe(200);
      fake.faults.random = { probability: 0.5, faults: [{ status: 500 }] };
      let failed = 0;
      for (let i = 0; i < 40; i++) if ((await batch(fake, gets(1))).status === 500) failed++;
      expect(failed).toBeGreaterThan(5);
      expect(failed).toBeLessThan(35);
    });
  });
});

// Slow rates (one token per 10 s) so that no token refills while a test runs, however loaded the
// machine: every decision below is made by the burst alone.
const SLOW = { ratePerSec: 0.1 };

describe('fake graph throttling', () => {
  let fake: FakeGraph;
  beforeAll(async () => {
    fake = await startFakeGraph({ tenants: TENANTS, seed: 7, limits: { requests: { ...SLOW, burst: 5 } } });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.reset());

  it('answers 429 with Retry-After to the requests over the limit INSIDE a 200 batch, and runs none of them', async () => {
    const byId = await batchById(fake, gets(8));
    const statuses = [...byId.values()].map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    const limited = [...byId.values()].filter((r) => r.status === 429);
    expect(limited).toHaveLength(3);
    for (const r of limited) {
      expect(Number(r.headers?.['Retry-After'])).toBeGreaterThanOrEqual(10);
      expect(r.body).toMatchObject({ error: { code: 'TooManyRequests' } });
    }
    expect(fake.executed).toHaveLength(5);
    const ran = new Set(fake.executed.map((e) => e.requestId));
    for (const r of limited) expect(ran.has(r.id)).toBe(false);
    expect(fake.stats.throttled).toEqual({ batchCall: 0, singleCall: 0, inBatch: 3 });
    expect(fake.stats.arrivals.requests).toHaveLength(5);
  });

  it('answers 424 to the rest of a chain after a throttled request', async () => {
    const chain: Req[] = gets(7).map((r, i) => (i === 0 ? r : { ...r, dependsOn: [String(i)] }));
    const byId = await batchById(fake, chain);
    expect([...byId.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([, r]) => r.status)).toEqual([
      200, 200, 200, 200, 200, 429, 424,
    ]);
    expect(fake.executed).toHaveLength(5);
  });

  it('throttles single calls whole from the same request budget, and keeps tenants apart', async () => {
    await batchById(fake, gets(4));
    expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(200);
    const refused = await call(fake, 'GET', '/v1.0/me');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(10);
    expect(await refused.json()).toMatchObject({ error: { code: 'TooManyRequests' } });
    expect((await call(fake, 'GET', '/v1.0/me', { auth: FAB })).status).toBe(200);
    expect(fake.stats.throttled).toEqual({ batchCall: 0, singleCall: 1, inBatch: 0 });
    expect(fake.executed).toHaveLength(6);
  });

  it('does not count calls that fail auth', async () => {
    for (let i = 0; i < 3; i++) expect((await batch(fake, gets(2), 'Bearer nope')).status).toBe(401);
    const byId = await batchById(fake, gets(5));
    expect([...byId.values()].every((r) => r.status === 200)).toBe(true);
  });

  it('setLimit changes the hidden limit at runtime, for all tenants or one', async () => {
    fake.setLimit({});
    for (let i = 0; i < 3; i++) await batchById(fake, gets(20));
    expect(fake.stats.throttled.inBatch).toBe(0);

    fake.setLimit({ requests: { ...SLOW, burst: 2 } });
    const byId = await batchById(fake, gets(4));
    expect([...byId.values()].filter((r) => r.status === 429)).toHaveLength(2);

    fake.setLimit({ requests: { ...SLOW, burst: 1 } }, 'fabrikam');
    const fab = await batchById(fake, gets(3), FAB);
    expect([...fab.values()].filter((r) => r.status === 429)).toHaveLength(2);
    // contoso keeps the all-tenant limit it had (its bucket is empty).
    expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(429);

    fake.reset();
    const again = await batchById(fake, gets(6));
    expect([...again.values()].filter((r) => r.status === 429)).toHaveLength(1);
  });
});

describe('fake graph batch-call limit', () => {
  it('answers 429 to the whole $batch call over the batch-call limit and runs nothing', async () => {
    const fake = await startFakeGraph({ tenants: TENANTS, limits: { batchCalls: { ...SLOW, burst: 2 } } });
    try {
      await batchById(fake, gets(3));
      await batchById(fake, gets(3));
      const refused = await batch(fake, gets(3));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(10);
      expect(fake.executed).toHaveLength(6);
      expect(fake.stats.throttled).toEqual({ batchCall: 1, singleCall: 0, inBatch: 0 });
      expect(fake.stats.batchCalls).toBe(3);
      expect(fake.stats.arrivals.batchCalls).toHaveLength(2);
      // Single calls and other tenants are not batch calls.
      expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(200);
      await batchById(fake, gets(1), FAB);
    } finally {
      await fake.close();
    }
  });
});

describe('fake graph request log', () => {
  it('reports every answered call once, with the size of an executed batch', async () => {
    const calls: FakeGraphCall[] = [];
    const fake = await startFakeGraph({ tenants: TENANTS, seed: 1, onCall: (c) => calls.push(c) });
    try {
      await batchById(fake, gets(2));
      expect((await call(fake, 'GET', '/v1.0/users/zz?$select=id')).status).toBe(404);
      expect((await batch(fake, gets(1), 'Bearer nope')).status).toBe(401);
      await vi.waitFor(() => expect(calls).toHaveLength(3));
      expect(calls.map(({ ms: _, ...c }) => c)).toEqual([
        { callId: 1, method: 'POST', target: '/v1.0/$batch', status: 200, requests: 2 },
        { callId: 2, method: 'GET', target: '/v1.0/users/zz?$select=id', status: 404 },
        { callId: 3, method: 'POST', target: '/v1.0/$batch', status: 401 },
      ]);
    } finally {
      await fake.close();
    }
  });

  it('adds latencyMs to every answer', async () => {
    const fake = await startFakeGraph({ tenants: TENANTS, latencyMs: () => 80 });
    try {
      const t0 = performance.now();
      expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(79);
      expect(Number.isInteger(fake.seed)).toBe(true);
    } finally {
      await fake.close();
    }
  });
});

describe('fake graph per-user faults', () => {
  const BOB = 'Bearer tok-bob';
  let fake: FakeGraph;
  beforeAll(async () => {
    fake = await startFakeGraph({ tenants: TENANTS, seed: 3 });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.reset());

  const statuses = (byId: Map<string, Sub>) => [...byId.values()].map((r) => r.status);

  it('throttles one user per request inside a 200 batch, with Retry-After and scope; others run', async () => {
    fake.users.throttle.push({ user: 'alice', retryAfterSec: 5, scope: 'Mailbox/Application/alice' });
    const alice = await batchById(fake, gets(3));
    expect(statuses(alice)).toEqual([429, 429, 429]);
    // The first request opens the 5 s window; the others get what is left of it, in whole seconds
    // (4 when the machine took over a second between them, as under a heavy load).
    const waits = [...alice.values()].map((r) => Number(r.headers?.['Retry-After']));
    expect(Math.max(...waits)).toBe(5);
    for (const wait of waits) expect([4, 5]).toContain(wait);
    for (const r of alice.values()) {
      expect(r.headers).toMatchObject({ 'x-ms-throttle-scope': 'Mailbox/Application/alice' });
      expect(r.body).toMatchObject({ error: { code: 'TooManyRequests' } });
    }
    expect(statuses(await batchById(fake, gets(3), BOB))).toEqual([200, 200, 200]);
    expect(fake.executed.map((e) => e.credential)).toEqual([BOB, BOB, BOB]);
    // A single call of the throttled user is refused whole, with the remaining wait.
    const single = await call(fake, 'GET', '/v1.0/me');
    expect(single.status).toBe(429);
    expect(Number(single.headers.get('retry-after'))).toBeGreaterThanOrEqual(4);
    expect(fake.userStats('alice')).toMatchObject({
      batchCalls: 1,
      singleCalls: 1,
      executed: 0,
      throttled: 4,
      throttledEarly: 1,
    });
    expect(fake.userStats('alice').arrivals).toHaveLength(2);
    expect(fake.userStats('bob')).toMatchObject({ batchCalls: 1, executed: 3, throttled: 0 });
    // Not the tenant's limit: that stays untouched.
    expect(fake.stats.throttled).toEqual({ batchCall: 0, singleCall: 0, inBatch: 0 });
  });

  it('serves the user after the window; re-throttles at each reopening with windows', async () => {
    fake.users.throttle.push({ token: 'tok-alice', retryAfterSec: 1 });
    expect(statuses(await batchById(fake, gets(1)))).toEqual([429]);
    // Too early: throttled again, counted as not having waited.
    const early = await batchById(fake, gets(1));
    expect(statuses(early)).toEqual([429]);
    expect(fake.userStats('alice').throttledEarly).toBe(1);
    await sleep(1050);
    expect(statuses(await batchById(fake, gets(2)))).toEqual([200, 200]);

    fake.users.throttle.length = 0;
    fake.users.throttle.push({ user: 'alice', retryAfterSec: 1, windows: Number.POSITIVE_INFINITY });
    expect(statuses(await batchById(fake, gets(1)))).toEqual([429]);
    await sleep(1050);
    expect(statuses(await batchById(fake, gets(1)))).toEqual([429]);
    expect(fake.userStats('alice')).toMatchObject({ throttled: 4, throttledEarly: 1, executed: 2 });
  });

  it('fails one user: their $batch is answered 503 whole, nothing runs; others are served', async () => {
    fake.users.fail.push({ user: 'alice', retryAfterSec: 2 });
    const failed = await batch(fake, gets(3));
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('2');
    expect(await failed.json()).toMatchObject({ error: { code: 'ServiceUnavailable' } });
    expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(503);
    expect(statuses(await batchById(fake, gets(2), BOB))).toEqual([200, 200]);
    expect(fake.executed.map((e) => e.credential)).toEqual([BOB, BOB]);
    expect(fake.userStats('alice')).toMatchObject({
      batchCalls: 1,
      singleCalls: 1,
      failedCalls: 2,
      executed: 0,
    });

    // `on` narrows it to $batch calls; another status; removing it ends it.
    fake.users.fail[0] = { token: 'tok-alice', on: 'batch', status: 500 };
    expect((await batch(fake, gets(1))).status).toBe(500);
    expect((await call(fake, 'GET', '/v1.0/me')).status).toBe(200);
    fake.users.fail.length = 0;
    expect((await batch(fake, gets(1))).status).toBe(200);
  });

  it('accepts a JWT its issuer signed (tid, oid) and refuses one forged with the same claims', async () => {
    const victim = signGraphToken({ tid: 'contoso', oid: 'victim-oid', appid: 'app-1' });
    const me = await call(fake, 'GET', '/v1.0/me', { auth: `Bearer ${victim}` });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: 'victim-oid' });
    expect(statuses(await batchById(fake, gets(2), `Bearer ${victim}`))).toEqual([200, 200]);

    const forged = `Bearer ${forgeGraphToken({ tid: 'contoso', oid: 'victim-oid', appid: 'app-1' })}`;
    const single = await call(fake, 'POST', '/v1.0/me/messages', { auth: forged, body: { subject: 'x' } });
    expect(single.status).toBe(401);
    expect(await single.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
    expect((await batch(fake, gets(2), forged)).status).toBe(401);
    // A signed token for a tenant the fake does not have is refused too, and counted nowhere.
    const elsewhere = signGraphToken({ tid: 'nowhere', oid: 'victim-oid' });
    expect((await call(fake, 'GET', '/v1.0/me', { auth: `Bearer ${elsewhere}` })).status).toBe(401);

    expect(fake.userStats('victim-oid')).toMatchObject({
      singleCalls: 1,
      batchCalls: 1,
      executed: 3,
      forged: 2,
    });
    expect(fake.executed.every((e) => e.credential === `Bearer ${victim}`)).toBe(true);
    expect(fake.stats.unauthorized).toBe(3);
    // A user fault by oid selects the signed token's user, and not the forger's (refused earlier).
    fake.users.throttle.push({ user: 'victim-oid', retryAfterSec: 3 });
    expect(statuses(await batchById(fake, gets(1), `Bearer ${victim}`))).toEqual([429]);
  });

  it('records every executed $batch: who sent it, its shape and its requests', async () => {
    await batchById(fake, [
      { id: 'a', method: 'POST', url: '/me/messages', headers: JSON_HEADERS, body: { subject: 's' } },
      { id: 'b', method: 'GET', url: '/ME/messages', dependsOn: ['a'] },
    ]);
    await batchById(fake, gets(2), BOB);
    expect((await batch(fake, gets(1), 'Bearer nope')).status).toBe(401);
    expect(fake.batches).toEqual([
      {
        callId: 1,
        tenant: 'contoso',
        version: 'v1.0',
        credential: ALICE,
        shape: 'serial',
        requests: [
          { id: 'a', method: 'POST', url: '/me/messages', dependsOn: [] },
          { id: 'b', method: 'GET', url: '/ME/messages', dependsOn: ['a'] },
        ],
      },
      {
        callId: 2,
        tenant: 'contoso',
        version: 'v1.0',
        credential: BOB,
        shape: 'parallel',
        requests: [
          { id: '1', method: 'GET', url: '/me', dependsOn: [] },
          { id: '2', method: 'GET', url: '/me', dependsOn: [] },
        ],
      },
    ]);
    fake.reset();
    expect(fake.batches).toEqual([]);
    expect(fake.userStats('alice').batchCalls).toBe(0);
  });
});
