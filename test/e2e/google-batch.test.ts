// The real proxy process speaking Google batching (DIALECT=google-batch) in front of the fake Google
// upstream (test/fake-google): concurrent single calls of several users leave as multipart batches,
// each caller gets its own status, headers and body; writes to one resource never share a batch; a
// malformed part fails its op alone (502); a write is never sent twice after a 5xx; a part throttled
// inside a 200 batch goes again after its Retry-After and no caller sees the 429.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type FakeGoogle, startFakeGoogle } from '../fake-google/index.js';
import { runProxyToExit } from '../harness/process.js';
import { useProxy } from '../harness/use.js';

const USERS = ['alice', 'bob', 'carol'] as const;
type User = (typeof USERS)[number];
const tokenOf = (user: string) => `Bearer tok-${user}`;

let fake: FakeGoogle | undefined;
const google = (): FakeGoogle => {
  if (!fake) throw new Error('the fake is not started');
  return fake;
};

const { proxy } = useProxy(
  async () => {
    fake = await startFakeGoogle({ tokens: Object.fromEntries(USERS.map((u) => [`tok-${u}`, u])), seed: 29 });
    return {
      DIALECT: 'google-batch',
      UPSTREAM_URL: fake.url,
      LOG_LEVEL: 'warn',
      BATCH_WINDOW_MS: '20',
      BATCH_MAX_OPS: '25',
      BATCH_RATE_PER_SEC: '100',
      BATCH_BURST: '100',
    };
  },
  { exitCode: 0 },
);

afterEach(() => google().reset());
afterAll(() => fake?.close());

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | undefined;
}

async function call(
  user: User,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${proxy.url}${path}`, {
    method,
    headers: {
      authorization: tokenOf(user),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
}

describe('Google batching through the real proxy process', () => {
  it('sends concurrent calls of several users as multipart batches, each caller with its own answer', async () => {
    const checks: Array<Promise<void>> = [];
    for (const user of USERS) {
      for (let i = 0; i < 20; i++) {
        if (i % 2 === 0) {
          checks.push(
            call(user, 'POST', '/gmail/v1/users/me/labels', { body: { name: `${user}-${i}` } }).then((r) => {
              expect(r.status).toBe(200);
              expect(r.body).toMatchObject({ name: `${user}-${i}` });
              expect(r.headers.get('etag')).toMatch(/^"e\d+"$/);
              expect(r.headers.get('content-type')).toMatch(/^application\/json/);
            }),
          );
        } else {
          checks.push(
            call(user, 'GET', `/gmail/v1/users/me/messages/missing-${user}-${i}?format=raw`).then((r) => {
              expect(r.status).toBe(404);
              expect(r.body).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } });
            }),
          );
        }
      }
    }
    await Promise.all(checks);
    const f = google();
    expect(f.stats.singleCalls).toBe(0);
    expect(Math.max(...f.stats.batchSizes)).toBeLessThanOrEqual(25);
    expect(Math.max(...f.stats.batchSizes)).toBeGreaterThan(1);
    expect(f.stats.batchCalls).toBeLessThan(checks.length);
    // Each call ran once, under its caller's own token, its query text as sent.
    expect(f.executed).toHaveLength(checks.length);
    for (const e of f.executed) {
      const owner =
        e.method === 'POST' ? /"name":"(\w+)-/.exec(e.body)?.[1] : /missing-(\w+)-/.exec(e.target)?.[1];
      expect(e.credential).toBe(tokenOf(owner ?? ''));
      if (e.method === 'GET') expect(e.target).toMatch(/\?format=raw$/);
    }
  });

  it('never puts a write in one batch with another call on its resource', async () => {
    const created = await call('alice', 'POST', '/drive/v3/files', { body: { name: 'f' } });
    const path = `/drive/v3/files/${String(created.body?.id)}`;
    const before = google().batches.length;
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0 ? call('alice', 'GET', path) : call('alice', 'PATCH', path, { body: { n: i } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    for (const b of google().batches.slice(before)) {
      const writes = b.parts.filter((p) => p.startsWith('PATCH '));
      if (writes.length > 0) expect(b.parts).toHaveLength(1);
    }
    expect(google().executed.filter((e) => e.method === 'PATCH')).toHaveLength(8);
  });

  it('answers 502 to the op whose part came back malformed, and to it alone', async () => {
    google().partFaults.push(
      { target: '/gmail/v1/users/me/messages/bad', kind: 'bad-status-line' },
      { target: '/gmail/v1/users/me/messages/lost', kind: 'missing' },
    );
    const [bad, lost, ...good] = await Promise.all([
      call('alice', 'GET', '/gmail/v1/users/me/messages/bad'),
      call('alice', 'GET', '/gmail/v1/users/me/messages/lost'),
      ...Array.from({ length: 4 }, (_, i) =>
        call('bob', 'POST', '/gmail/v1/users/me/labels', { body: { i } }),
      ),
    ]);
    expect(bad?.status).toBe(502);
    expect(lost?.status).toBe(502);
    expect(good.map((g) => g.status)).toEqual([200, 200, 200, 200]);
  });

  it('never sends a write again after a batch’s 5xx; a read may go again', async () => {
    // The upstream ran the batch, then answered 500: the write's caller is told, the write not resent.
    google().faults.queue.push({ status: 500, afterExecute: true });
    const write = await call('carol', 'POST', '/gmail/v1/users/me/labels', { body: { name: 'once' } });
    expect(write.status).toBe(502);
    expect(google().executed.map((e) => e.method)).toEqual(['POST']);
    expect(google().stats.batchCalls).toBe(1);
    // A read is safe to run twice: it goes again and its caller gets the real answer.
    google().faults.queue.push({ status: 500, afterExecute: true });
    const read = await call('carol', 'GET', '/gmail/v1/users/me/labels/none');
    expect(read.status).toBe(404);
    expect(google().executed.map((e) => e.method)).toEqual(['POST', 'GET', 'GET']);
  });

  it('sends a part throttled inside a 200 batch again after its Retry-After: no caller sees the 429', async () => {
    google().throttleUser('bob', 3, 1);
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => call('bob', 'GET', `/gmail/v1/users/me/messages/m${i}`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 6 }, () => 404));
    expect(google().stats.throttledParts).toBe(3);
    expect(google().stats.batchCalls).toBeGreaterThan(1);
    // Each read ran exactly once (a throttled part never ran).
    expect(
      google()
        .executed.map((e) => e.target)
        .sort(),
    ).toEqual(Array.from({ length: 6 }, (_, i) => `/gmail/v1/users/me/messages/m${i}`));
  });

  it('passes through what a batch cannot carry, and the caller’s own batch', async () => {
    const media = await fetch(`${proxy.url}/drive/v3/files/x?alt=media`, {
      headers: { authorization: tokenOf('alice') },
    });
    expect(media.headers.get('server-timing')).toContain('passthrough;desc="query"');
    await media.arrayBuffer();
    const own = await fetch(`${proxy.url}/batch/gmail/v1`, {
      method: 'POST',
      headers: { authorization: tokenOf('alice'), 'content-type': 'multipart/mixed; boundary=own' },
      body: '--own\r\nContent-Type: application/http\r\nContent-ID: <mine>\r\n\r\nGET /gmail/v1/users/me/x HTTP/1.1\r\n\r\n\r\n--own--\r\n',
    });
    const text = await own.text();
    expect(own.status).toBe(200);
    expect(text).toContain('Content-ID: <response-mine>');
    expect(own.headers.get('server-timing')).toContain('passthrough;desc="batch-endpoint"');
    expect(google().stats.batchSizes).toEqual([1]);
    expect(google().stats.singleCalls).toBe(1);
  });

  it('refuses to start without a budget: one line naming the variable, exit 2', async () => {
    const exited = await runProxyToExit({ DIALECT: 'google-batch', UPSTREAM_URL: google().url });
    expect(exited.code).toBe(2);
    expect(exited.stderr.trim()).toMatch(
      /^invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT=google-batch: Google's quotas differ .*PACING=adaptive$/,
    );
  });
});
