// The real proxy process speaking Salesforce Composite from a dialect file
// (DIALECT_FILE=dialects/salesforce-composite.json) in front of the faithful fake org
// (test/fake-salesforce): concurrent single sObject calls leave as composite calls of at most 25, which
// the org counts as one API call each; each caller gets exactly its own answer; a bad result fails only
// its op; a write is never sent twice; a refused session or an exhausted org limit reaches every op.

import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeSalesforce, startFakeSalesforce } from '../fake-salesforce/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { repoRoot } from '../harness/repo-root.js';

const V = '/services/data/v62.0';
const SEEDED = '001000000000001AAA';
/** Seeded accounts: distinct records, so calls on them never wait for each other (SPEC §5). */
const ACCOUNTS = Array.from({ length: 80 }, (_, i) => `001R00000000${String(i).padStart(3, '0')}AAA`);
const DAY = 24 * 60 * 60 * 1000;

let fake: FakeSalesforce;
let proxy: ProxyProcess;

beforeAll(async () => {
  fake = await startFakeSalesforce({
    tokens: ['tok-a', 'tok-b'],
    records: {
      Account: [
        { Id: SEEDED, Name: 'Seeded', Industry: 'Energy' },
        ...ACCOUNTS.map((Id, i) => ({ Id, Name: `account-${i}` })),
      ],
    },
    apiLimit: { limit: 100_000, windowMs: DAY },
    seed: 29,
  });
  proxy = await startProxyProcess({
    DIALECT_FILE: join(repoRoot(), 'dialects', 'salesforce-composite.json'),
    UPSTREAM_URL: fake.url,
    LOG_LEVEL: 'warn',
    // A slow batch budget, as an org's daily limit is: while it says wait, ops gather (SPEC §5), so
    // how many composites leave does not hang on how the calls' arrivals spread on a busy machine.
    BATCH_WINDOW_MS: '20',
    BATCH_RATE_PER_SEC: '10',
    BATCH_BURST: '1',
  });
});

afterAll(async () => {
  expect(await proxy?.stop()).toBe(0);
  await fake?.close();
});

afterEach(() => fake.reset());

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function call(
  token: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${proxy.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

const create = (token: string, name: string) =>
  call(token, 'POST', `${V}/sobjects/Account`, { body: { Name: name } });

/** The subrequests that ran with this body's Name: a write sent twice shows as two. */
const runsOf = (name: string) =>
  fake.executed.filter((e) => (e.body as { Name?: string } | undefined)?.Name === name).length;

describe('Salesforce Composite (dialect file) through the real proxy process', () => {
  it('merges concurrent single calls into composites of ≤ 25, fewer API calls, each caller its own answer', async () => {
    const N = 60;
    const answers = await Promise.all(
      ACCOUNTS.slice(0, N).map((id, i) =>
        i % 2 === 0
          ? call('tok-a', 'GET', `${V}/sobjects/Account/${id}?fields=Name`).then((r) => {
              expect(r.status).toBe(200);
              expect(r.body).toEqual({
                attributes: { type: 'Account', url: `${V}/sobjects/Account/${id}` },
                Id: id,
                Name: `account-${i}`,
              });
              return r;
            })
          : call('tok-a', 'PATCH', `${V}/sobjects/Account/${id}`, { body: { Name: `patched-${i}` } }).then(
              (r) => {
                expect([r.status, r.body]).toEqual([204, undefined]);
                expect(fake.record('Account', id)?.Name).toBe(`patched-${i}`);
                return r;
              },
            ),
      ),
    );
    expect(answers).toHaveLength(N);
    const { compositeCalls, singleCalls, compositeSizes } = fake.stats;
    const used = fake.apiUsage().used;
    console.log(
      `salesforce e2e: ${N} single calls → ${compositeCalls} composite + ${singleCalls} single calls = ${used} API calls (sizes ${compositeSizes.join(',')})`,
    );
    expect(Math.max(...compositeSizes)).toBeLessThanOrEqual(25);
    expect(compositeSizes.reduce((a, b) => a + b, 0) + singleCalls).toBe(N);
    // The reason to batch: the org counts each composite as one call.
    expect(used).toBe(compositeCalls + singleCalls);
    expect(used).toBeLessThanOrEqual(N / 5);
    expect(fake.composites.every((c) => c.allOrNone === false)).toBe(true);
    for (let i = 1; i < N; i += 2) expect(runsOf(`patched-${i}`)).toBe(1);
  });

  it('keeps the calls on one record apart when one writes: never in one composite, each after the last answered', async () => {
    const [a, b] = [ACCOUNTS[20] as string, ACCOUNTS[21] as string];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => [
        call('tok-a', 'PATCH', `${V}/sobjects/Account/${a}`, { body: { Name: `a-${i}` } }),
        call('tok-a', 'PATCH', `${V}/sobjects/Account/${b}`, { body: { Name: `b-${i}` } }),
        call('tok-a', 'GET', `${V}/sobjects/Account/${ACCOUNTS[30 + i]}`),
      ]).flat(),
    );
    for (const c of fake.composites) {
      const urls = c.subrequests.map((s) => s.url);
      expect(new Set(urls).size, JSON.stringify(urls)).toBe(urls.length);
    }
    // Other records' calls rode along: fewer composites than calls.
    expect(fake.composites.length).toBeLessThan(18);
    // Each record ends with the value of the PATCH that ran last on it, and each PATCH ran once.
    for (const [id, prefix] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      const runs = fake.executed
        .filter((e) => e.url.endsWith(id))
        .map((e) => (e.body as { Name: string }).Name);
      expect(runs.sort()).toEqual(Array.from({ length: 6 }, (_, i) => `${prefix}-${i}`));
      const last = fake.executed.filter((e) => e.url.endsWith(id)).at(-1)?.body as { Name: string };
      expect(fake.record('Account', id)?.Name).toBe(last.Name);
    }
  });

  it('creates: a new record each, its Location relayed; creates of one sObject wait for each other', async () => {
    const answers = await Promise.all(
      ['Account', 'Contact', 'Lead', 'Account'].map((type, i) =>
        call('tok-a', 'POST', `${V}/sobjects/${type}`, { body: { Name: `new-${i}` } }).then((r) => ({
          type,
          r,
        })),
      ),
    );
    for (const [i, { type, r }] of answers.entries()) {
      expect(r.status).toBe(201);
      const id = (r.body as { id: string }).id;
      expect(r.body).toEqual({ id, success: true, errors: [] });
      expect(r.headers.get('location')).toBe(`${V}/sobjects/${type}/${id}`);
      expect(fake.record(type, id)?.Name).toBe(`new-${i}`);
    }
    // A POST to a collection is a write to that path (SPEC §5): the two Account creates never share
    // a composite; the three first ones do.
    const accountCalls = fake.composites.filter((c) => c.subrequests.some((s) => s.url.endsWith('/Account')));
    expect(accountCalls).toHaveLength(2);
    expect(fake.composites.length).toBeLessThan(4);
  });

  it('updates and deletes through composites: 204 with no body, the record changed', async () => {
    const made = await create('tok-a', 'to-change');
    const id = (made.body as { id: string }).id;
    const [patched, other] = await Promise.all([
      call('tok-a', 'PATCH', `${V}/sobjects/Account/${id}`, { body: { Name: 'changed' } }),
      call('tok-a', 'GET', `${V}/sobjects/Account/${SEEDED}`),
    ]);
    expect([patched.status, patched.body]).toEqual([204, undefined]);
    expect(other.status).toBe(200);
    expect(fake.record('Account', id)?.Name).toBe('changed');
    const deleted = await call('tok-a', 'DELETE', `${V}/sobjects/Account/${id}`);
    expect([deleted.status, deleted.body]).toEqual([204, undefined]);
    const gone = await call('tok-a', 'GET', `${V}/sobjects/Account/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual([{ message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' }]);
    expect(fake.executed.every((e) => e.via === 'composite')).toBe(true);
  });

  it('sends queries and resources other than sObjects alone, never inside a composite', async () => {
    const q = encodeURIComponent("SELECT Id, Name FROM Account WHERE Industry = 'Energy'");
    const [query, limits] = await Promise.all([
      call('tok-a', 'GET', `${V}/query?q=${q}`),
      call('tok-a', 'GET', `${V}/limits`),
      create('tok-a', 'beside-a-query'),
    ]);
    expect(query.status).toBe(200);
    expect(query.body).toMatchObject({ totalSize: 1, done: true, records: [{ Name: 'Seeded' }] });
    // Gone alone, the call gets the org's own answer headers, its API usage among them.
    expect(query.headers.get('sforce-limit-info')).toMatch(/^api-usage=\d+\/100000$/);
    expect(limits.status).toBe(404);
    const single = fake.executed.filter((e) => e.via === 'single').map((e) => e.url.split('?')[0]);
    expect(single.sort()).toEqual([`${V}/limits`, `${V}/query`]);
    expect(fake.composites.flatMap((c) => c.subrequests.map((s) => s.url))).toEqual([
      `${V}/sobjects/Account`,
    ]);
  });

  it('fails only the op whose result is missing (502), and never sends that write again', async () => {
    fake.faults.always = { dropReferenceIds: ['batchproxy_op0'] };
    const names = Array.from({ length: 12 }, (_, i) => `dropped-${i}`);
    const answers = await Promise.all(
      names.map((n, i) =>
        call('tok-a', 'PATCH', `${V}/sobjects/Account/${ACCOUNTS[i]}`, { body: { Name: n } }),
      ),
    );
    fake.faults.always = undefined;
    const statuses = answers.map((a) => a.status);
    // Each composite lost its first result: one 502 per composite, every other op its own 201.
    expect(statuses.filter((s) => s === 502)).toHaveLength(fake.composites.length);
    expect(statuses.filter((s) => s === 204)).toHaveLength(names.length - fake.composites.length);
    expect(fake.composites.length).toBeLessThan(names.length);
    for (const n of names) expect(runsOf(n)).toBe(1);
  });

  it('never sends a write again after a whole-composite 5xx; a read is retried', async () => {
    fake.faults.queue.push({ status: 500, afterExecute: true });
    const names = ['five-0', 'five-1', 'five-2'];
    const [read, ...writes] = await Promise.all([
      call('tok-a', 'GET', `${V}/sobjects/Account/${ACCOUNTS[10]}`),
      ...names.map((n, i) =>
        call('tok-a', 'PATCH', `${V}/sobjects/Account/${ACCOUNTS[i]}`, { body: { Name: n } }),
      ),
    ]);
    expect(fake.composites[0]?.subrequests).toHaveLength(4);
    // The composite ran, its answer was lost: each PATCH ran once, its caller gets a 502.
    for (const w of writes) expect(w?.status).toBe(502);
    for (const n of names) expect(runsOf(n)).toBe(1);
    // The GET may run twice without harm: sent again, it gets its answer.
    expect(read?.status).toBe(200);
    expect(fake.executed.filter((e) => e.url.endsWith(ACCOUNTS[10] as string)).length).toBeGreaterThan(1);
  });

  it('gives every op of an expired session its 401, and other sessions their own answers', async () => {
    fake.expireSession('tok-b');
    const [expired, fine] = await Promise.all([
      Promise.all(Array.from({ length: 5 }, (_, i) => create('tok-b', `expired-${i}`))),
      Promise.all(Array.from({ length: 5 }, (_, i) => create('tok-a', `fine-${i}`))),
    ]);
    for (const r of expired) {
      expect(r.status).toBe(401);
      expect(r.body).toEqual([{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    for (const r of fine) expect(r.status).toBe(201);
    for (let i = 0; i < 5; i++) expect(runsOf(`expired-${i}`)).toBe(0);
  });

  it("gives the org's 403 REQUEST_LIMIT_EXCEEDED once the API limit is used up, then holds the rest", async () => {
    await create('tok-a', 'uses-one');
    fake.setApiLimit({ limit: fake.apiUsage().used, windowMs: DAY });
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => create('tok-a', `over-${i}`)));
    // The first call over the limit gets the org's own refusal; its Sforce-Limit-Info says the
    // day's calls are used up (RATE_HEADERS=auto, issue #30), so the proxy holds the scope and the
    // calls still queued get 503 + Retry-After instead of spending calls the org would refuse.
    const refused = answers.filter((r) => r.status === 403);
    const held = answers.filter((r) => r.status === 503);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.length + held.length).toBe(4);
    for (const r of refused)
      expect(r.body).toEqual([
        { message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' },
      ]);
    for (const r of held) {
      expect(r.body).toMatchObject({ error: { code: 'PROXY_DEADLINE_EXCEEDED' } });
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(fake.stats.overLimit).toBe(refused.length);
    for (let i = 0; i < 4; i++) expect(runsOf(`over-${i}`)).toBe(0);
  });
});
