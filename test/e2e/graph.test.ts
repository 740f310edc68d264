// The real proxy process speaking Microsoft Graph (DIALECT=graph) in front of the faithful fake Graph
// (test/fake-graph): concurrent single calls from several users' tokens leave as `$batch` calls of at
// most 20, each caller gets exactly its own status, headers and body, and a 429 inside a 200 batch
// never reaches a caller whose deadline allows a retry, while each request still runs once.

import { afterEach, describe, expect, it } from 'vitest';
import { runProxyToExit } from '../harness/process.js';
import { useProxy } from '../harness/use.js';

const USERS = ['u0', 'u1', 'u2', 'u3'] as const;
type User = (typeof USERS)[number];
const tokenOf = (user: string) => `Bearer tok-${user}`;

const { proxy, graph: fake } = useProxy(
  {
    DIALECT: 'graph',
    LOG_LEVEL: 'warn',
    BATCH_WINDOW_MS: '20',
    BATCH_RATE_PER_SEC: '100',
    BATCH_BURST: '100',
  },
  {
    graph: {
      tenants: {
        contoso: { tokens: Object.fromEntries(USERS.map((u) => [`tok-${u}`, u])) },
        fabrikam: { tokens: { 'tok-zed': 'zed' } },
      },
      seed: 19,
    },
    exitCode: 0,
  },
);

afterEach(() => fake.reset());

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown> | undefined;
}

async function call(
  user: User | 'zed',
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
    text,
    body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
}

describe('Microsoft Graph through the real proxy process', () => {
  it('sends concurrent calls of several users as $batch calls of ≤ 20, each caller with its own answer', async () => {
    const checks: Array<Promise<void>> = [];
    for (const user of USERS) {
      for (let i = 0; i < 25; i++) {
        const kind = i % 5;
        if (kind === 0 || kind === 1) {
          // A create: 201, its own Location and ETag, the body it sent.
          const subject = `s-${user}-${i}`;
          checks.push(
            call(user, 'POST', '/v1.0/me/messages', { body: { subject } }).then((r) => {
              expect(r.status).toBe(201);
              expect(r.body).toMatchObject({ subject });
              const id = String(r.body?.id);
              expect(r.headers.get('location')).toBe(`${fake.url}/v1.0/users/${user}/messages/${id}`);
              expect(r.headers.get('etag')).toBe(r.body?.['@odata.etag']);
              expect(r.headers.get('content-type')).toMatch(/^application\/json;odata\.metadata=minimal/);
            }),
          );
        } else if (kind === 2) {
          // A miss: the 404 names this caller's own id.
          checks.push(
            call(user, 'GET', `/v1.0/users/missing-${user}-${i}`).then((r) => {
              expect(r.status).toBe(404);
              expect(JSON.stringify(r.body)).toContain(`missing-${user}-${i}`);
            }),
          );
        } else if (kind === 3) {
          // The query text travels verbatim ($select), and /me is this caller's user.
          checks.push(
            call(user, 'GET', `/v1.0/me?$select=displayName&n=${i}`).then((r) => {
              expect(r.status).toBe(200);
              expect(r.body).toMatchObject({ id: user, displayName: user });
              expect(r.body).not.toHaveProperty('mail');
              expect(r.headers.get('etag')).toMatch(/^W\/"/);
            }),
          );
        } else {
          // A carried header changes the answer: with ConsistencyLevel the advanced query runs, without
          // it Graph refuses it; each caller gets the answer to what it sent.
          const eventual = i % 2 === 0;
          checks.push(
            call(user, 'GET', '/v1.0/users?$count=true', {
              headers: eventual ? { consistencylevel: 'eventual' } : {},
            }).then((r) => {
              if (eventual) {
                expect(r.status).toBe(200);
                expect(r.body?.['@odata.count']).toBe(USERS.length);
              } else {
                expect(r.status).toBe(400);
                expect(r.body).toMatchObject({ error: { code: 'Request_UnsupportedQuery' } });
              }
            }),
          );
        }
      }
    }
    await Promise.all(checks);

    // Only $batch calls left the proxy, none over 20, and several ops shared them.
    expect(fake.stats.singleCalls).toBe(0);
    expect(fake.stats.batchSizes.length).toBeGreaterThan(0);
    expect(Math.max(...fake.stats.batchSizes)).toBeLessThanOrEqual(20);
    expect(Math.max(...fake.stats.batchSizes)).toBeGreaterThan(1);
    expect(fake.stats.batchCalls).toBeLessThan(checks.length);
    // Credentials never mix: every request ran under the token of the caller that sent it.
    const creates = fake.executed.filter((e) => e.method === 'POST');
    expect(creates).toHaveLength(USERS.length * 10);
    for (const e of creates) {
      const owner = /^s-(u\d)-/.exec(String((e.body as { subject: string }).subject))?.[1];
      expect(e.credential).toBe(tokenOf(owner ?? ''));
      expect(e.via).toBe('batch');
    }
  });

  it('carries If-Match inside the op: a stale ETag gets its 412, the current one its 200', async () => {
    const created = await call('u1', 'POST', '/v1.0/me/messages', { body: { subject: 'a' } });
    const id = String(created.body?.id);
    const etag = created.headers.get('etag') ?? '';
    const [stale, current] = await Promise.all([
      call('u1', 'PATCH', `/v1.0/me/messages/${id}`, {
        body: { subject: 'b' },
        headers: { 'if-match': 'W/"stale"' },
      }),
      call('u2', 'GET', '/v1.0/me'),
    ]);
    expect(stale.status).toBe(412);
    expect(current.status).toBe(200);
    const ok = await call('u1', 'PATCH', `/v1.0/me/messages/${id}`, {
      body: { subject: 'c' },
      headers: { 'if-match': etag },
    });
    expect([ok.status, ok.body?.subject]).toEqual([200, 'c']);
    expect(fake.executed.filter((e) => e.method === 'PATCH').map((e) => e.headers['if-match'])).toEqual([
      'W/"stale"',
      etag,
    ]);
    expect(fake.stats.singleCalls).toBe(0);
  });

  it('never answers a caller the 429 of a request throttled inside a 200 batch; each runs once', async () => {
    // Graph's hidden limit: 10 requests at once, then 20/s. 60 concurrent reads from three users
    // make the first batches mostly 429 inside a 200.
    fake.setLimit({ requests: { ratePerSec: 20, burst: 10 } });
    const calls = Array.from({ length: 60 }, (_, i) => {
      const user = USERS[i % 3] as User;
      return call(user, 'GET', `/v1.0/users/${user}?n=${i}`).then((r) => ({ i, user, r }));
    });
    const answers = await Promise.all(calls);
    for (const { user, r } of answers) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ id: user });
    }
    expect(fake.stats.throttled.inBatch).toBeGreaterThan(0);
    expect(fake.stats.throttled.batchCall + fake.stats.throttled.singleCall).toBe(0);
    expect(fake.stats.singleCalls).toBe(0);
    // Each caller's request ran exactly once, under its own token.
    const runs = new Map<string, number>();
    for (const e of fake.executed) runs.set(e.url, (runs.get(e.url) ?? 0) + 1);
    expect(runs.size).toBe(60);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    for (const e of fake.executed) expect(e.credential).toBe(tokenOf(e.path.split('/')[2] ?? ''));
  });

  it('sends one user’s conflicting writes as serial dependsOn chains, in fewer calls, each run once', async () => {
    const subjects = Array.from({ length: 10 }, (_, i) => `chain-${i}`);
    const created = await Promise.all(
      subjects.map((subject) => call('u3', 'POST', '/v1.0/me/messages', { body: { subject } })),
    );
    expect(created.map((r) => r.status)).toEqual(subjects.map(() => 201));
    expect(created.map((r) => r.body?.subject)).toEqual(subjects);
    // Without chains each create waits for the previous answer: 10 calls. With them, the first
    // leaves alone and the others follow it as one chain (a slow machine may split them further).
    expect(fake.stats.batchCalls).toBeLessThanOrEqual(5);
    expect(Math.max(...fake.stats.batchSizes)).toBeGreaterThan(1);
    expect(fake.executed.map((e) => (e.body as { subject: string }).subject).sort()).toEqual(
      [...subjects].sort(),
    );
  });

  it('answers a chain’s failing head as Graph did and runs its tail again: no caller sees a 424', async () => {
    const created = await call('u1', 'POST', '/v1.0/me/messages', { body: { subject: 'a' } });
    const id = String(created.body?.id);
    const before = fake.executed.length;
    // Two writes to one message in one window: chained (in whichever order they arrive). If the
    // stale one is first, Graph answers the second 424 and the proxy sends it again.
    const [stale, fresh] = await Promise.all([
      call('u1', 'PATCH', `/v1.0/me/messages/${id}`, {
        body: { subject: 'stale' },
        headers: { 'if-match': 'W/"stale"' },
      }),
      call('u1', 'PATCH', `/v1.0/me/messages/${id}`, { body: { subject: 'fresh' } }),
    ]);
    expect([stale.status, fresh.status]).toEqual([412, 200]);
    expect(fresh.body?.subject).toBe('fresh');
    expect(
      fake.executed
        .slice(before)
        .map((e) => e.status)
        .sort(),
    ).toEqual([200, 412]);
  });

  it('passes through what a batch cannot carry, and the caller’s own $batch', async () => {
    // A write without a body would fail the whole batch at Graph: alone, it gets Graph's answer.
    const bodyless = await fetch(`${proxy.url}/v1.0/me/messages`, {
      method: 'POST',
      headers: { authorization: tokenOf('u0') },
    });
    expect(bodyless.status).toBe(400);
    expect(bodyless.headers.get('server-timing')).toContain('passthrough;desc="body"');
    await bodyless.arrayBuffer();

    const own = await call('u0', 'POST', '/v1.0/$batch', {
      body: {
        requests: [
          { id: 'a', method: 'GET', url: '/me' },
          { id: 'b', method: 'GET', url: '/users/nobody' },
        ],
      },
    });
    expect(own.status).toBe(200);
    const statuses = Object.fromEntries(
      (own.body?.responses as Array<{ id: string; status: number }>).map((r) => [r.id, r.status]),
    );
    expect(statuses).toEqual({ a: 200, b: 404 });
    expect(own.headers.get('server-timing')).toContain('passthrough;desc="batch-endpoint"');
    expect(fake.stats.singleCalls).toBe(1);
    expect(fake.stats.batchSizes).toEqual([2]);
  });

  it('keeps the versions apart: a beta call leaves in a beta batch', async () => {
    const [v1, beta] = await Promise.all([call('u0', 'GET', '/v1.0/me'), call('u0', 'GET', '/beta/me')]);
    expect([v1.status, beta.status]).toEqual([200, 200]);
    expect(String(beta.body?.['@odata.context'])).toContain('/beta/');
    expect(fake.executed.map((e) => e.version).sort()).toEqual(['beta', 'v1.0']);
    expect(fake.stats.batchCalls).toBe(2);
  });

  it('refuses to start with AUTH_MODE=app-token: one line naming the variable, exit 2', async () => {
    const exited = await runProxyToExit({
      DIALECT: 'graph',
      UPSTREAM_URL: fake.url,
      BATCH_RATE_PER_SEC: '1',
      AUTH_MODE: 'app-token',
      APP_SECRETS_FILE: '/nonexistent.json',
    });
    expect(exited.code).toBe(2);
    expect(exited.stderr.trim()).toBe(
      'invalid configuration: AUTH_MODE: DIALECT=graph allows passthrough, not app-token (got "app-token")',
    );
  });

  it('refuses to start without a budget: Graph has no safe default (one line naming the variable, exit 2)', async () => {
    const exited = await runProxyToExit({ DIALECT: 'graph', UPSTREAM_URL: fake.url });
    expect(exited.code).toBe(2);
    expect(exited.stderr.trim()).toMatch(
      /^invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT=graph: Graph's limits differ per service and tenant .*PACING=adaptive$/,
    );
  });
});

describe('Microsoft Graph single calls (SINGLE_OP_DIRECT)', () => {
  const { proxy: direct } = useProxy(
    () => ({
      DIALECT: 'graph',
      UPSTREAM_URL: fake.url,
      LOG_LEVEL: 'warn',
      BATCH_WINDOW_MS: '5',
      BATCH_RATE_PER_SEC: '100',
      SINGLE_OP_DIRECT: 'true',
    }),
    { exitCode: 0 },
  );

  it('sends a lone op as a Graph single call with its query and carried headers, and relays its headers', async () => {
    const created = await fetch(`${direct.url}/v1.0/me/messages`, {
      method: 'POST',
      headers: {
        authorization: tokenOf('u2'),
        'content-type': 'application/json',
        'client-request-id': 'c-1',
      },
      body: JSON.stringify({ subject: 'alone' }),
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { id: string; subject: string };
    expect(body.subject).toBe('alone');
    expect(created.headers.get('location')).toBe(`${fake.url}/v1.0/users/u2/messages/${body.id}`);
    expect(created.headers.get('etag')).toMatch(/^W\//);
    expect(created.headers.get('server-timing')).toContain('lane;desc="single"');

    const counted = await fetch(`${direct.url}/v1.0/users?$count=true&$select=id`, {
      headers: { authorization: tokenOf('u2'), consistencylevel: 'eventual' },
    });
    expect(counted.status).toBe(200);
    expect(((await counted.json()) as Record<string, unknown>)['@odata.count']).toBe(USERS.length);

    expect(fake.stats.batchCalls).toBe(0);
    expect(
      fake.executed.map((e) => [
        e.via,
        e.method,
        e.url,
        e.headers['client-request-id'] ?? e.headers.consistencylevel,
      ]),
    ).toEqual([
      ['single', 'POST', '/me/messages', 'c-1'],
      ['single', 'GET', '/users?$count=true&$select=id', 'eventual'],
    ]);
  });
});
