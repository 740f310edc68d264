// The fake Google upstream over real HTTP: the batching rules it enforces, its per-user quota and its
// faults, checked with multipart bodies written out by hand (not with the proxy's dialect).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeGoogle, startFakeGoogle } from './index.js';

let fake: FakeGoogle;
beforeAll(async () => {
  fake = await startFakeGoogle({ tokens: { 'tok-a': 'alice', 'tok-b': 'bob' }, seed: 7, maxParts: 5 });
});
afterAll(() => fake.close());
afterEach(() => fake.reset());

interface Part {
  id?: string;
  method: string;
  target: string;
  headers?: Record<string, string>;
  body?: string;
  type?: string;
}

function multipart(parts: readonly Part[], boundary = 'xyz'): string {
  return `${parts
    .map((p) => {
      const id = p.id === undefined ? '' : `Content-ID: ${p.id}\r\n`;
      const headers = Object.entries(p.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`);
      return `--${boundary}\r\nContent-Type: ${p.type ?? 'application/http'}\r\n${id}\r\n${p.method} ${p.target} HTTP/1.1\r\n${headers.join('')}\r\n${p.body ?? ''}\r\n`;
    })
    .join('')}--${boundary}--\r\n`;
}

async function batch(
  parts: readonly Part[],
  init: { token?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const res = await fetch(`${fake.url}/batch/gmail/v1`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${init.token ?? 'tok-a'}`,
      'content-type': 'multipart/mixed; boundary=xyz',
      ...init.headers,
    },
    body: init.body ?? multipart(parts),
  });
  const text = await res.text();
  const boundary = /boundary=(\S+)/.exec(res.headers.get('content-type') ?? '')?.[1];
  const answers =
    boundary === undefined
      ? []
      : text
          .split(`--${boundary}`)
          .slice(1, -1)
          .map((part) => {
            const id = /Content-ID: <([^>]+)>/.exec(part)?.[1];
            const status = Number(/\r\n(HTTP\/\S+) (\d{3})/.exec(part)?.[2]);
            const line = /\r\n(HTTP\/\S+) /.exec(part)?.[1];
            const body = part.slice(part.lastIndexOf('\r\n\r\n') + 4).trim();
            return {
              id,
              status,
              line,
              headers: part,
              body: body === '' ? undefined : (JSON.parse(body) as Record<string, unknown>),
            };
          });
  return { status: res.status, text, answers };
}

describe('fake Google batching', () => {
  it('runs each part under the outer credential and answers every part by its Content-ID, in shuffled order', async () => {
    const created = await batch([
      {
        id: '<item-0>',
        method: 'POST',
        target: '/gmail/v1/users/me/labels',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"a"}',
      },
      { id: '<item-1>', method: 'GET', target: '/gmail/v1/users/me/labels/none' },
      { id: '<item-2>', method: 'POST', target: '/gmail/v1/users/me/labels', body: '{"name":"b"}' },
      { id: '<item-3>', method: 'POST', target: '/gmail/v1/users/me/labels', body: '{"name":"c"}' },
    ]);
    expect(created.status).toBe(200);
    const byId = Object.fromEntries(created.answers.map((a) => [a.id, a]));
    expect(Object.keys(byId).sort()).toEqual([
      'response-item-0',
      'response-item-1',
      'response-item-2',
      'response-item-3',
    ]);
    expect(created.answers.map((a) => a.id)).not.toEqual(Object.keys(byId).sort());
    expect(byId['response-item-0']).toMatchObject({ status: 200, line: 'HTTP/1.1', body: { name: 'a' } });
    expect(byId['response-item-1']).toMatchObject({
      status: 404,
      body: { error: { code: 404, status: 'NOT_FOUND' } },
    });
    expect(fake.executed.map((e) => [e.user, e.credential, e.via])).toEqual(
      Array.from({ length: 4 }, () => ['alice', 'Bearer tok-a', 'batch']),
    );
    expect(fake.stats.batchSizes).toEqual([4]);
  });

  it('applies outer headers other than Content-* to every part; a part’s own header wins', async () => {
    await batch(
      [
        { id: '<a>', method: 'GET', target: '/gmail/v1/users/me/x' },
        { id: '<b>', method: 'GET', target: '/gmail/v1/users/me/y', headers: { 'accept-language': 'fr' } },
      ],
      { headers: { 'accept-language': 'de', 'content-language': 'en' } },
    );
    const seen = fake.executed.map((e) => [
      e.target,
      e.headers['accept-language'],
      e.headers['content-language'],
    ]);
    expect(seen.sort()).toEqual([
      ['/gmail/v1/users/me/x', 'de', undefined],
      ['/gmail/v1/users/me/y', 'fr', undefined],
    ]);
  });

  it('refuses a batch of more than its maximum parts whole (400), and carries exactly the maximum', async () => {
    const part = (i: number): Part => ({
      id: `<item-${i}>`,
      method: 'GET',
      target: `/gmail/v1/users/me/m${i}`,
    });
    const over = await batch(Array.from({ length: 6 }, (_, i) => part(i)));
    expect(over.status).toBe(400);
    expect(over.text).toContain('more than 5');
    expect(fake.executed).toEqual([]);
    const max = await batch(Array.from({ length: 5 }, (_, i) => part(i)));
    expect([max.status, max.answers.length]).toEqual([200, 5]);
  });

  it.each([
    ['no boundary', { headers: { 'content-type': 'application/json' } }],
    [
      'no closing delimiter',
      { body: '--xyz\r\nContent-Type: application/http\r\n\r\nGET /gmail/v1/users/me/x HTTP/1.1\r\n\r\n' },
    ],
    [
      'a part that is not application/http',
      { body: multipart([{ method: 'GET', target: '/gmail/v1/x/y', type: 'text/plain' }]) },
    ],
    [
      'a bad request line',
      { body: '--xyz\r\nContent-Type: application/http\r\n\r\nGET nowhere\r\n\r\n--xyz--' },
    ],
    ['no parts', { body: '--xyz--\r\n' }],
  ])('refuses a batch with %s (400), running nothing', async (_what, init) => {
    const r = await batch([], init);
    expect(r.status).toBe(400);
    expect(fake.stats.refused).toBe(1);
    expect(fake.executed).toEqual([]);
  });

  it('answers a part for another API 400, alone', async () => {
    const r = await batch([
      { id: '<item-0>', method: 'GET', target: '/drive/v3/files/x' },
      { id: '<item-1>', method: 'POST', target: '/gmail/v1/users/me/labels', body: '{}' },
    ]);
    expect(r.answers.map((a) => [a.id, a.status]).sort()).toEqual([
      ['response-item-0', 400],
      ['response-item-1', 200],
    ]);
  });

  it('refuses a missing or unknown bearer token 401, running nothing', async () => {
    expect((await batch([{ method: 'GET', target: '/gmail/v1/users/me/x' }], { token: 'nope' })).status).toBe(
      401,
    );
    const res = await fetch(`${fake.url}/gmail/v1/users/me/x`);
    expect(res.status).toBe(401);
    await res.arrayBuffer();
    expect(fake.stats.unauthorized).toBe(2);
    expect(fake.executed).toEqual([]);
  });

  it('counts each part against its user’s quota: a part over it is answered 429 with Retry-After, not run', async () => {
    const limited = await startFakeGoogle({
      tokens: { t: 'u' },
      perUser: { ratePerSec: 0.5, burst: 2 },
      seed: 1,
    });
    try {
      const res = await fetch(`${limited.url}/batch/gmail/v1`, {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': 'multipart/mixed; boundary=xyz' },
        body: multipart(
          [0, 1, 2].map((i) => ({ id: `<item-${i}>`, method: 'GET', target: `/gmail/v1/users/me/m${i}` })),
        ),
      });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text.match(/HTTP\/1\.1 429/g)).toHaveLength(1);
      // One token every 2 s: the wait is at most 2 s, less the time the parts took under load.
      expect(text).toMatch(/Retry-After: [12]\r\n/);
      expect(limited.executed).toHaveLength(2);
      expect(limited.stats.throttledParts).toBe(1);
      const single = await fetch(`${limited.url}/gmail/v1/users/me/m9`, {
        headers: { authorization: 'Bearer t' },
      });
      expect(single.status).toBe(429);
      expect(single.headers.get('retry-after')).not.toBeNull();
      await single.arrayBuffer();
      expect(limited.stats.throttledCalls).toBe(1);
    } finally {
      await limited.close();
    }
  });

  it('throttles one user on demand, the others not', async () => {
    fake.throttleUser('alice', 1, 4);
    const a = await batch([{ id: '<item-0>', method: 'GET', target: '/gmail/v1/users/me/x' }]);
    const b = await batch([{ id: '<item-0>', method: 'GET', target: '/gmail/v1/users/me/x' }], {
      token: 'tok-b',
    });
    expect(a.answers[0]).toMatchObject({ status: 429 });
    expect(a.answers[0]?.headers).toContain('Retry-After: 4');
    expect(b.answers[0]).toMatchObject({ status: 404 });
  });

  it('answers a whole-batch fault: before running (nothing ran) or after (everything ran)', async () => {
    const parts = [{ id: '<item-0>', method: 'POST', target: '/gmail/v1/users/me/labels', body: '{}' }];
    fake.faults.queue.push({ status: 503, retryAfterSec: 2 });
    const before = await batch(parts);
    expect(before.status).toBe(503);
    expect(fake.executed).toEqual([]);
    fake.faults.queue.push({ status: 500, afterExecute: true });
    const after = await batch(parts);
    expect(after.status).toBe(500);
    expect(fake.executed).toHaveLength(1);
  });

  it('malforms one part’s answer on demand', async () => {
    fake.partFaults.push(
      { target: '/gmail/v1/users/me/a', kind: 'bad-status-line' },
      { target: '/gmail/v1/users/me/b', kind: 'no-content-id' },
      { target: '/gmail/v1/users/me/c', kind: 'twice' },
      { target: '/gmail/v1/users/me/d', kind: 'missing' },
    );
    const r = await batch(
      ['a', 'b', 'c', 'd'].map((x, i) => ({
        id: `<item-${i}>`,
        method: 'GET',
        target: `/gmail/v1/users/me/${x}`,
      })),
    );
    const ids = r.answers.map((a) => a.id);
    expect(r.answers.find((a) => a.id === 'response-item-0')?.line).toBe('HTTP/9');
    expect(ids).not.toContain('response-item-3');
    expect(ids.filter((id) => id === 'response-item-2')).toHaveLength(2);
    expect(ids.filter((id) => id === undefined)).toHaveLength(1);
  });
});

describe('fake Google single calls', () => {
  const call = async (
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const res = await fetch(`${fake.url}${path}`, {
      method,
      headers: { authorization: 'Bearer tok-a', ...init.headers },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      etag: res.headers.get('etag'),
      body: text === '' ? undefined : JSON.parse(text),
    };
  };

  it('creates, reads, patches under If-Match, and deletes', async () => {
    const created = await call('POST', '/drive/v3/files', { body: { name: 'f' } });
    expect(created).toMatchObject({ status: 200, body: { name: 'f', id: 'id1' } });
    expect(await call('GET', '/drive/v3/files/id1')).toMatchObject({ status: 200, etag: created.etag });
    expect(await call('GET', '/drive/v3/files')).toMatchObject({
      status: 200,
      body: { items: [{ id: 'id1' }] },
    });
    expect(
      await call('GET', '/drive/v3/files/id1', { headers: { 'if-none-match': created.etag ?? '' } }),
    ).toMatchObject({ status: 304 });
    expect(
      await call('PATCH', '/drive/v3/files/id1', { body: { name: 'g' }, headers: { 'if-match': '"stale"' } }),
    ).toMatchObject({ status: 412 });
    expect(
      await call('PATCH', '/drive/v3/files/id1', {
        body: { name: 'g' },
        headers: { 'if-match': created.etag ?? '' },
      }),
    ).toMatchObject({ status: 200, body: { name: 'g', id: 'id1' } });
    expect(await call('PUT', '/drive/v3/files/id1', { body: { other: 1 } })).toMatchObject({
      status: 200,
      body: { other: 1, id: 'id1' },
    });
    expect(await call('DELETE', '/drive/v3/files/id1')).toMatchObject({ status: 204, body: undefined });
    expect(await call('DELETE', '/drive/v3/files/id1')).toMatchObject({ status: 404 });
    expect(await call('POST', '/drive/v3/files', { body: [1] })).toMatchObject({ status: 400 });
    expect(fake.executed.every((e) => e.via === 'single')).toBe(true);
  });

  it('answers 404 outside /{api}/{version}/… and a non-POST batch 400', async () => {
    expect((await call('GET', '/nothing')).status).toBe(404);
    expect((await call('GET', '/batch/gmail/v1')).status).toBe(400);
  });
});
