// The real proxy process in front of the fake upstream: every caller gets exactly its own answer,
// no op runs under another caller's credential, and what cannot be batched passes through unchanged.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signAppToken } from '../fake-upstream/index.js';
import { runProxyToExit, startProxyProcess } from '../harness/process.js';
import { TALKJS_DIALECTS } from '../harness/talkjs-dialects.js';
import { useProxy } from '../harness/use.js';

/** Conversations per caller; each gets a chain of messages that must stay in order. */
const CONVERSATIONS = 10;
const APPS = { app1: 'sk_test_app1', app2: 'sk_test_app2' };

interface Caller {
  readonly label: string;
  readonly appId: keyof typeof APPS;
  readonly authorization: string;
}

function callers(): Caller[] {
  const list: Caller[] = [
    { label: 'app1-secret', appId: 'app1', authorization: `Bearer ${APPS.app1}` },
    { label: 'app2-secret', appId: 'app2', authorization: `Bearer ${APPS.app2}` },
  ];
  for (let i = 0; i < 3; i++) {
    const token = signAppToken('app1', APPS.app1, { expiresInSec: 600, claims: { caller: i } });
    list.push({ label: `app1-jwt-${i}`, appId: 'app1', authorization: `Bearer ${token}` });
  }
  return list;
}

/** Indexes i < 1000 of the jobs of `kind` that `caller` sent (jobs go round-robin over callers). */
function jobsFor(all: Caller[], caller: Caller, kind: number): number[] {
  const mine: number[] = [];
  for (let i = 0; i < 1000; i++) if (all[i % all.length] === caller && i % 4 === kind) mine.push(i);
  return mine;
}

// Once with the built-in TalkJS module, once with TalkJS written as a dialect file.
describe.each(TALKJS_DIALECTS)('batching through the real proxy process ($name)', ({ env: dialectEnv }) => {
  const { proxy, upstream } = useProxy(
    { LOG_LEVEL: 'warn', BATCH_WINDOW_MS: '10', ...dialectEnv },
    // The upstream's documented batch limit; the proxy runs with the same (default) numbers.
    { upstream: { apps: APPS, limits: { batch: { ratePerSec: 1, burst: 500 } } }, exitCode: 0 },
  );

  async function call(method: string, path: string, caller: Caller, body?: unknown) {
    const res = await fetch(`${proxy.url}/v1/${caller.appId}${path}`, {
      method,
      headers: {
        authorization: caller.authorization,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as unknown, headers: res.headers };
  }

  it('answers 1,000 concurrent mixed calls from several credentials, each with its own answer', async () => {
    upstream.reset();
    const all = callers();
    // Seed each caller's own user (also the sender of its messages) and conversation.
    for (const c of all) {
      expect(
        (await call('PUT', `/users/seed-${c.label}`, c, { name: c.label, custom: { owner: c.label } }))
          .status,
      ).toBe(200);
      for (let k = 0; k < CONVERSATIONS; k++) {
        const conv = await call('PUT', `/conversations/conv-${c.label}-${k}`, c, {
          participants: [`seed-${c.label}`],
        });
        expect(conv.status).toBe(200);
      }
    }
    const executedBefore = upstream.executed.length;
    const statsBefore = structuredClone(upstream.stats);

    const started = performance.now();
    /** Message id each POST was answered with → the text that POST sent. */
    const postedIds = new Map<string, string>();
    const jobs = Array.from({ length: 1000 }, (_, i) => {
      const caller = all[i % all.length] as Caller;
      const kind = i % 4;
      if (kind === 0) {
        return call('GET', `/users/seed-${caller.label}`, caller).then((r) => {
          expect(r.status).toBe(200);
          expect(r.body).toMatchObject({ id: `seed-${caller.label}`, custom: { owner: caller.label } });
        });
      }
      if (kind === 1) {
        return call('GET', `/users/missing-${i}`, caller).then((r) => {
          // The upstream's 404 names the user: this caller's own answer, not another miss's.
          expect([r.status, r.body]).toEqual([
            404,
            { errorCode: 'NOT_FOUND', message: `user missing-${i} not found` },
          ]);
        });
      }
      if (kind === 2) {
        return call('POST', `/conversations/conv-${caller.label}-${i % CONVERSATIONS}/messages`, caller, [
          {
            text: `m${i}`,
            sender: `seed-${caller.label}`,
            type: 'UserMessage',
            custom: { owner: caller.label, n: String(i) },
          },
        ]).then((r) => {
          expect(r.status).toBe(200);
          const created = r.body as Array<{ id: string }>;
          expect(created).toEqual([{ id: expect.stringMatching(/^msg_/) }]);
          postedIds.set(created[0]?.id ?? '', `m${i}`);
        });
      }
      return call('PUT', `/users/u-${i}`, caller, {
        name: `user ${i}`,
        custom: { owner: caller.label, n: String(i) },
      }).then((r) => {
        expect([r.status, r.body]).toEqual([200, {}]);
        expect(r.headers.get('server-timing')).toMatch(/queue;dur=.*upstream;dur=.*batch;desc="\d+"/);
      });
    });
    await Promise.all(jobs);

    // Credential isolation: every write ran under the credential of the caller that sent it.
    const byAuth = new Map(all.map((c) => [c.authorization, c.label]));
    const writes = upstream.executed.slice(executedBefore).filter((op) => op.method !== 'GET');
    expect(writes).toHaveLength(500);
    for (const op of writes) {
      const owner = Array.isArray(op.body)
        ? (op.body[0] as { custom: { owner: string } }).custom.owner
        : (op.body as { custom: { owner: string } }).custom.owner;
      expect(byAuth.get(op.credential)).toBe(owner);
    }

    // Every message arrived exactly once, and each POST was answered with its own message's id.
    const storedIds = new Map<string, string>();
    for (const c of all) {
      const texts: string[] = [];
      for (let k = 0; k < CONVERSATIONS; k++) {
        const res = await call('GET', `/conversations/conv-${c.label}-${k}/messages?limit=100`, c);
        expect(res.status).toBe(200);
        const data = (res.body as { data: Array<{ id: string; text: string }> }).data;
        texts.push(...data.map((m) => m.text));
        for (const m of data) storedIds.set(m.id, m.text);
      }
      const expected = jobsFor(all, c, 2).map((i) => `m${i}`);
      expect(texts.sort()).toEqual(expected.sort());
    }
    expect(postedIds.size).toBe(250);
    for (const [id, text] of postedIds) expect(storedIds.get(id), id).toBe(text);

    const batchSizes = upstream.stats.batchSizes.slice(statsBefore.batchSizes.length);
    const { rejected429 } = upstream.stats;
    const ops = batchSizes.reduce((a, b) => a + b, 0);
    const fill = ops / batchSizes.length / 10;
    console.log(
      `1,000 calls in ${Math.round(performance.now() - started)} ms -> ${batchSizes.length} batch calls, ${ops} ops, fill ${(fill * 100).toFixed(1)}%, ` +
        `${upstream.stats.singleCalls - statsBefore.singleCalls} single calls, upstream 429s: ${rejected429.batch + rejected429.rest}`,
    );
    expect(rejected429.batch + rejected429.rest).toBe(0);
    expect(upstream.stats.singleCalls).toBe(statsBefore.singleCalls);
    // The fill depends on how fast the calls arrive (a 10 ms window catches what arrives within it);
    // batching must at least beat one call per op. The upstream's exact limiter saw no 429 above.
    expect(batchSizes.length).toBeLessThan(ops / 1.5);
  });

  it('passes non-batchable calls through byte-for-byte', async () => {
    const caller = callers()[0] as Caller;
    await call('PUT', '/users/pt', caller, { name: 'pass' });
    const direct = await fetch(`${upstream.url}/v1/app1/users/pt`, {
      headers: { authorization: caller.authorization, 'if-none-match': '"x"' },
    });
    const viaProxy = await fetch(`${proxy.url}/v1/app1/users/pt`, {
      headers: { authorization: caller.authorization, 'if-none-match': '"x"' },
    });
    expect(viaProxy.status).toBe(direct.status);
    expect(Buffer.from(await viaProxy.arrayBuffer())).toEqual(Buffer.from(await direct.arrayBuffer()));
    expect(viaProxy.headers.get('content-type')).toBe(direct.headers.get('content-type'));

    const before = upstream.stats.singleCalls;
    const bypass = await fetch(`${proxy.url}/v1/app1/users/pt`, {
      headers: { authorization: caller.authorization, 'x-batch-bypass': '1' },
    });
    expect(bypass.status).toBe(200);
    expect(upstream.stats.singleCalls).toBe(before + 1);
    const last = upstream.executed.at(-1);
    expect(last?.via).toBe('single');
  });

  it('passes the client’s own batch call through and answers it as the upstream did', async () => {
    const caller = callers()[0] as Caller;
    const before = upstream.stats.batchCalls;
    const res = await fetch(`${proxy.url}/v1/app1/batch`, {
      method: 'POST',
      headers: { authorization: caller.authorization, 'content-type': 'application/json' },
      body: JSON.stringify([
        [1, 'PUT', '/users/own-batch', { name: 'own' }],
        [2, 'GET', '/users/own-batch-missing', {}],
      ]),
    });
    expect(res.status).toBe(200);
    const results = (await res.json()) as Array<[number, number, unknown]>;
    expect(results.map(([seq, status]) => [seq, status]).sort()).toEqual([
      [1, 200],
      [2, 404],
    ]);
    expect(upstream.stats.batchCalls).toBe(before + 1);
  });

  it('refuses malformed JSON with 400 and never calls the upstream', async () => {
    const before = upstream.executed.length;
    const res = await fetch(`${proxy.url}/v1/app1/users/bad`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${APPS.app1}`, 'content-type': 'application/json' },
      body: '{"name": ',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'PROXY_MALFORMED_JSON' } });
    expect(upstream.executed.length).toBe(before);
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await fetch(`${proxy.url}/v1/app1/users/big`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${APPS.app1}`, 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(1_100_000) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: 'PROXY_BODY_TOO_LARGE' } });
  });

  it('echoes x-request-id and serves the admin endpoints on their own port', async () => {
    const res = await fetch(`${proxy.url}/v1/app1/users/seed-app1-secret`, {
      headers: { authorization: `Bearer ${APPS.app1}`, 'x-request-id': 'req-123' },
    });
    expect(res.headers.get('x-request-id')).toBe('req-123');
    await res.arrayBuffer();
    expect((await fetch(`${proxy.adminUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${proxy.adminUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/batch_proxy_requests_total\{[^}]*kind="batched"/);
    expect(metrics).toMatch(/batch_proxy_batch_size_bucket/);
    expect((await fetch(`${proxy.url}/healthz`)).status).not.toBe(200); // the data port has no admin paths
  });
});

describe('start-up', () => {
  it('stops with a message naming a bad variable', async () => {
    await expect(
      startProxyProcess({ UPSTREAM_URL: 'not a url', BATCH_MAX_OPS: '11' }, { readyTimeoutMs: 5_000 }),
    ).rejects.toThrow(/UPSTREAM_URL[\s\S]*|BATCH_MAX_OPS/);
  });

  it('stops with one line naming the field of a bad dialect file (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bad-dialect-'));
    const file = join(dir, 'bad.json');
    const spec = JSON.parse(readFileSync(TALKJS_DIALECTS[1]?.env.DIALECT_FILE ?? '', 'utf8')) as {
      results: Record<string, unknown>;
    };
    spec.results.match = { by: 'name' };
    writeFileSync(file, JSON.stringify(spec));
    const exited = await runProxyToExit({ DIALECT_FILE: file, UPSTREAM_URL: 'http://127.0.0.1:9' });
    expect(exited.code).toBe(2);
    expect(exited.stderr.trim()).toMatch(
      new RegExp(`^invalid configuration: DIALECT_FILE: ${file}: results\\.match\\.by: [^\\n]+$`),
    );
  });
});
