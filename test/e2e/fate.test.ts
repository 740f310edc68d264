// SPEC §8d "Fate isolation", through the real proxy process in front of the fakes' targeted faults:
// what one credential, one resource or one throttled user suffers stays theirs.
//  - TalkJS, breakers per group (app + exact credential): a credential whose every upstream call fails
//    opens its own breaker only — its next call is 503 PROXY_CIRCUIT_OPEN without reaching the
//    upstream, while another credential of the same app keeps getting the upstream's answers; the
//    metrics count one app and one group, the log names the group by a 12-hex digest, never the
//    credential; only when three groups of an app are open together is the whole app refused.
//  - TalkJS, a poisoned op travels alone: a resource that fails every batch holding it, among 8
//    concurrent GETs, is bisected out (8 → 4 → 2 → 1); the 7 others get their upstream answers, each
//    op runs once, and only the poisoned GET gets the 502; a POST that shared the poisoned batch gets
//    502 and is never sent again, and while the resource is suspect a POST never shares its batch.
//  - Graph, a throttle pauses what was throttled: one user's 429 inside a 200 $batch (Retry-After 3 s)
//    pauses that user's group only — another user's calls reach Graph and are answered within the
//    window, and the throttled call is sent again only after its Retry-After.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type FakeGraphCall, signGraphToken } from '../fake-graph/index.js';
import { signAppToken } from '../fake-upstream/index.js';
import { PROMPT_BATCHES } from '../harness/env.js';
import { metrics, series } from '../harness/metrics.js';
import type { ProxyProcess } from '../harness/process.js';
import { useProxy } from '../harness/use.js';

interface Reply {
  status: number;
  retryAfter: string | null;
  body: unknown;
}

async function send(
  proxy: ProxyProcess,
  credential: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Reply> {
  const res = await fetch(`${proxy.url}${path}`, {
    method,
    headers: {
      authorization: credential,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: text === '' ? undefined : JSON.parse(text),
  };
}

interface AppStatus {
  appId: string;
  circuit: string;
  openGroups: number;
  appWide: boolean;
}

async function appStatus(proxy: ProxyProcess, appId: string): Promise<AppStatus | undefined> {
  const status = (await fetch(`${proxy.adminUrl}/status.json`).then((r) => r.json())) as {
    apps: AppStatus[];
  };
  return status.apps.find((a) => a.appId === appId);
}

/** What the proxy logs for a group: sha256 of the exact Authorization value, 12 hex digits. */
const digest = (credential: string) => createHash('sha256').update(credential).digest('hex').slice(0, 12);

const notFound = (id: string) => ({ errorCode: 'NOT_FOUND', message: `user ${id} not found` });

describe('TalkJS: one credential’s breaker', () => {
  const SECRET = 'sk_fate_breaker';
  // Two credentials of app1 the fake accepts: the secret key, and an app token signed with it.
  const GOOD = `Bearer ${SECRET}`;
  const BAD_TOKEN = signAppToken('app1', SECRET, { expiresInSec: 600 });
  const BAD = `Bearer ${BAD_TOKEN}`;
  const { proxy, upstream } = useProxy(
    {
      ...PROMPT_BATCHES,
      // One failed upstream call = one 502: the count of failures is the count of calls.
      UPSTREAM_MAX_ATTEMPTS: '1',
      CIRCUIT_BREAKER_FAILURES: '3',
      // Far longer than the tests: an open breaker cannot turn half-open under them on a slow machine.
      CIRCUIT_BREAKER_OPEN_MS: '60000',
      CIRCUIT_BREAKER_MAX_OPEN_MS: '60000',
      LOG_LEVEL: 'info',
    },
    { upstream: { apps: { app1: SECRET, app2: 'sk_fate_app2' } } },
  );

  it('opens only the failing credential’s group: the other credential of the app keeps its answers', async () => {
    // The fake's gateway fails every call carrying BAD (500 whole, before auth; nothing runs).
    upstream.credentials.fail.push({ credential: BAD, status: 500 });
    // A user GOOD's reads will find (written straight at the fake, not through the proxy).
    const seeded = await fetch(`${upstream.url}/v1/app1/users/alice`, {
      method: 'PUT',
      headers: { authorization: GOOD, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Alice' }),
    });
    expect(seeded.status).toBe(200);
    expect(series(await metrics(proxy), 'batch_proxy_circuit_open_apps')).toBe(0);
    expect(series(await metrics(proxy), 'batch_proxy_circuit_open_groups')).toBe(0);

    // BAD fails three times in a row; GOOD's calls in between succeed — in the same app, they must
    // neither be refused nor reset BAD's count.
    for (let n = 0; n < 3; n++) {
      const failed = await send(proxy, BAD, 'GET', `/v1/app1/users/bad-${n}`);
      expect(failed.status).toBe(502);
      expect(failed.body).toMatchObject({ error: { code: 'PROXY_UPSTREAM_UNAVAILABLE' } });
      const served = await send(proxy, GOOD, 'GET', `/v1/app1/users/good-${n}`);
      expect(served).toMatchObject({ status: 404, body: notFound(`good-${n}`) });
    }
    expect(upstream.credentialStats(BAD)).toEqual({ batchCalls: 3, singleCalls: 0, failed: 3 });

    // BAD's next call is refused by the proxy itself: no upstream call.
    const refused = await send(proxy, BAD, 'GET', '/v1/app1/users/bad-3');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'PROXY_CIRCUIT_OPEN' } });
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(upstream.credentialStats(BAD)).toEqual({ batchCalls: 3, singleCalls: 0, failed: 3 });

    // One warning for the group, naming it by its digest only.
    const line = await proxy.waitForLine('circuit breaker open');
    const logged = JSON.parse(line) as { appId: string; group: string; circuit: string };
    expect(logged).toMatchObject({ appId: 'app1', circuit: 'open' });
    expect(logged.group).toMatch(/^[0-9a-f]{12}$/);
    expect(logged.group).toBe(digest(BAD));
    expect(line).not.toContain(BAD_TOKEN);
    expect(line).not.toContain(SECRET);

    // GOOD goes on: reads and a write of the same app, concurrently, each with its upstream answer.
    const goodCallsBefore = upstream.credentialStats(GOOD).batchCalls;
    const [alice, missing, written] = await Promise.all([
      send(proxy, GOOD, 'GET', '/v1/app1/users/alice'),
      send(proxy, GOOD, 'GET', '/v1/app1/users/nobody'),
      send(proxy, GOOD, 'PUT', '/v1/app1/users/bob', { name: 'Bob' }),
    ]);
    expect(alice).toMatchObject({ status: 200 });
    expect(alice.body).toEqual({ id: 'alice', name: 'Alice', createdAt: expect.any(Number) });
    expect(missing).toMatchObject({ status: 404, body: notFound('nobody') });
    expect(written).toMatchObject({ status: 200, body: {} });
    expect(upstream.credentialStats(GOOD).batchCalls).toBeGreaterThan(goodCallsBefore);
    expect(upstream.credentialStats(GOOD).failed).toBe(0);
    expect(upstream.executed.filter((e) => e.credential === BAD)).toEqual([]);

    const text = await metrics(proxy);
    expect(series(text, 'batch_proxy_circuit_open_apps')).toBe(1);
    expect(series(text, 'batch_proxy_circuit_open_groups')).toBe(1);
    expect(await appStatus(proxy, 'app1')).toMatchObject({
      circuit: 'open',
      openGroups: 1,
      appWide: false,
    });
    // Nothing the proxy wrote carries the failing credential.
    expect(proxy.logs()).not.toContain(BAD_TOKEN);
  });

  it('refuses the whole app only when three of its groups are open together', async () => {
    const secret = 'sk_fate_app2';
    const good = `Bearer ${secret}`;
    // Three more credentials of app2: app tokens that differ by a claim.
    const bad = [1, 2, 3].map((n) => `Bearer ${signAppToken('app2', secret, { claims: { n } })}`);
    for (const credential of bad) upstream.credentials.fail.push({ credential, status: 500 });
    const groupsBefore = series(await metrics(proxy), 'batch_proxy_circuit_open_groups');

    const open = async (credential: string, n: number) => {
      for (let i = 0; i < 3; i++)
        expect((await send(proxy, credential, 'GET', `/v1/app2/users/b${n}-${i}`)).status).toBe(502);
      await proxy.waitForLine(`"group":"${digest(credential)}"`);
    };
    await open(bad[0] as string, 0);
    await open(bad[1] as string, 1);
    // Two groups open: the app's other credential is still served.
    expect(await send(proxy, good, 'GET', '/v1/app2/users/x')).toMatchObject({
      status: 404,
      body: notFound('x'),
    });
    expect(await appStatus(proxy, 'app2')).toMatchObject({ circuit: 'open', openGroups: 2, appWide: false });

    await open(bad[2] as string, 2);
    const goodCalls = upstream.credentialStats(good).batchCalls;
    const refused = await send(proxy, good, 'GET', '/v1/app2/users/y');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'PROXY_CIRCUIT_OPEN' } });
    expect(upstream.credentialStats(good).batchCalls).toBe(goodCalls);
    expect(await appStatus(proxy, 'app2')).toMatchObject({ circuit: 'open', openGroups: 3, appWide: true });
    expect(series(await metrics(proxy), 'batch_proxy_circuit_open_groups')).toBe(groupsBefore + 3);
  });
});

describe('TalkJS: a poisoned resource among concurrent reads', () => {
  const SECRET = 'sk_fate_poison';
  const CREDENTIAL = `Bearer ${SECRET}`;
  const { proxy, upstream } = useProxy(
    {
      // A batch leaves when it holds 8 ops (full), never on the window: the 8 GETs below share the
      // first batch, and each half of a split batch is full at its cap.
      BATCH_MAX_OPS: '8',
      BATCH_WINDOW_MS: '5000',
      BATCH_RATE_PER_SEC: '1000',
      BATCH_BURST: '1000',
      // The poisoned GET, once alone, is not retried: its failures are exactly the bisection's.
      UPSTREAM_MAX_ATTEMPTS: '1',
      // The bisection fails at most 4 calls in a row (8, 4, 2, 1): this group's breaker stays closed.
      CIRCUIT_BREAKER_FAILURES: '5',
      LOG_LEVEL: 'warn',
    },
    { upstream: { apps: { app1: SECRET } } },
  );

  it('bisects a batch that fails whole: only the poisoned GET gets the 502, the 7 others their answers', async () => {
    const seeded = ['u1', 'u3', 'u5'];
    for (const id of seeded) {
      const res = await fetch(`${upstream.url}/v1/app1/users/${id}`, {
        method: 'PUT',
        headers: { authorization: CREDENTIAL, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `name of ${id}` }),
      });
      expect(res.status).toBe(200);
    }
    const ids = ['u0', 'u1', 'u2', 'u3', 'bad', 'u4', 'u5', 'u6'];
    upstream.resources.poison.push({ path: '/users/bad', appId: 'app1', status: 500 });
    const executedBefore = upstream.executed.length;

    const replies = await Promise.all(
      ids.map((id) => send(proxy, CREDENTIAL, 'GET', `/v1/app1/users/${id}`)),
    );

    ids.forEach((id, i) => {
      const reply = replies[i] as Reply;
      if (id === 'bad') {
        expect(reply.status).toBe(502);
        expect(reply.body).toMatchObject({ error: { code: 'PROXY_UPSTREAM_UNAVAILABLE' } });
      } else if (seeded.includes(id)) {
        expect(reply.status).toBe(200);
        expect(reply.body).toEqual({ id, name: `name of ${id}`, createdAt: expect.any(Number) });
      } else {
        expect(reply).toMatchObject({ status: 404, body: notFound(id) });
      }
    });

    // The fake failed four calls, each holding the poisoned GET, halving down to it alone.
    expect(upstream.poisonedCalls.map((c) => c.ops.length)).toEqual([8, 4, 2, 1]);
    for (const call of upstream.poisonedCalls) {
      expect(call.via).toBe('batch');
      expect(call.ops.map((o) => o.path)).toContain('/users/bad');
    }
    expect(upstream.poisonedCalls.at(-1)?.ops.map(({ method, path }) => ({ method, path }))).toEqual([
      { method: 'GET', path: '/users/bad' },
    ]);
    expect(upstream.poisonedCalls[0]?.ops.map((o) => o.path).sort()).toEqual(
      ids.map((id) => `/users/${id}`).sort(),
    );
    // Each other GET ran exactly once, in one of the halves that did not hold the poison.
    const ran = upstream.executed.slice(executedBefore);
    expect(ran.map((e) => e.path).sort()).toEqual(
      ids
        .filter((id) => id !== 'bad')
        .map((id) => `/users/${id}`)
        .sort(),
    );
    expect(upstream.resourceStats('/users/bad')).toMatchObject({ poisoned: 4, executed: 0 });
    // 1 whole batch + 3 rounds of two halves; the halves that ran held 4, 2 and 1 ops.
    expect(upstream.stats.batchCalls).toBe(7);
    expect([...upstream.stats.batchSizes].sort((a, b) => a - b)).toEqual([1, 2, 4]);
    // On the proxy's side: the split halves went back to the queue (8 + 4 + 2 ops), and no breaker
    // opened on the way.
    const text = await metrics(proxy);
    expect(series(text, 'batch_proxy_requeued_ops_total{reason="retry"}')).toBe(14);
    expect(series(text, 'batch_proxy_circuit_open_groups')).toBe(0);
  });

  it('answers a POST that shared the poisoned batch 502, sent once; later keeps POSTs apart from the suspect', async () => {
    upstream.resources.poison.push({ path: '/users/bad2', appId: 'app1', status: 500 });
    const poisonedBefore = upstream.poisonedCalls.length;
    const executedBefore = upstream.executed.length;
    const message = [{ text: 'hello', type: 'SystemMessage' }];
    const reads = ['v0', 'v1', 'v2', 'v3', 'v4', 'v5'];
    // Eight ops: one full batch at once.
    const [post, bad, ...others] = await Promise.all([
      send(proxy, CREDENTIAL, 'POST', '/v1/app1/conversations/c1/messages', message),
      send(proxy, CREDENTIAL, 'GET', '/v1/app1/users/bad2'),
      ...reads.map((id) => send(proxy, CREDENTIAL, 'GET', `/v1/app1/users/${id}`)),
    ]);
    // The POST may have run for all the proxy knows: 502, never sent again (here it did not run).
    expect(post).toMatchObject({ status: 502, body: { error: { code: 'PROXY_UPSTREAM_UNAVAILABLE' } } });
    expect(bad).toMatchObject({ status: 502, body: { error: { code: 'PROXY_UPSTREAM_UNAVAILABLE' } } });
    for (const [i, reply] of others.entries()) {
      expect(reply).toMatchObject({ status: 404, body: notFound(reads[i] as string) });
    }
    const poisoned = upstream.poisonedCalls.slice(poisonedBefore);
    const holdsPost = (ops: Array<{ path: string }>) =>
      ops.some((o) => o.path === '/conversations/c1/messages');
    expect(poisoned.filter((c) => holdsPost(c.ops))).toHaveLength(1);
    expect(poisoned[0]?.ops).toHaveLength(8);
    expect(upstream.executed.slice(executedBefore).map((e) => e.path)).not.toContain(
      '/conversations/c1/messages',
    );

    // Within 30 s /users/bad2 is suspect: a read of it and a POST elsewhere, arriving together, never
    // share a batch, so the POST runs once and is answered by the upstream.
    const poisonedMid = upstream.poisonedCalls.length;
    const executedMid = upstream.executed.length;
    const [post2, bad2] = await Promise.all([
      send(proxy, CREDENTIAL, 'POST', '/v1/app1/conversations/c2/messages', message),
      send(proxy, CREDENTIAL, 'GET', '/v1/app1/users/bad2'),
    ]);
    expect(bad2.status).toBe(502);
    expect(post2.status).not.toBe(502);
    const later = upstream.poisonedCalls.slice(poisonedMid);
    expect(later.map((c) => c.ops.map((o) => `${o.method} ${o.path}`))).toEqual([['GET /users/bad2']]);
    expect(
      upstream.executed.slice(executedMid).filter((e) => e.path === '/conversations/c2/messages'),
    ).toHaveLength(1);
  });
});

describe('Graph: one user throttled', () => {
  const RETRY_AFTER_SEC = 3;
  const ALICE = `Bearer ${signGraphToken({ tid: 'contoso', oid: 'alice' })}`;
  const BOB = `Bearer ${signGraphToken({ tid: 'contoso', oid: 'bob' })}`;
  const finished = new Set<(call: FakeGraphCall) => void>();
  const { proxy, graph: fake } = useProxy(
    {
      DIALECT: 'graph',
      BATCH_WINDOW_MS: '5',
      BATCH_RATE_PER_SEC: '100',
      BATCH_BURST: '100',
      LOG_LEVEL: 'warn',
    },
    {
      graph: {
        tenants: { contoso: { tokens: {} } },
        onCall: (call) => {
          for (const listener of finished) listener(call);
        },
      },
    },
  );

  /** Resolves when the fake has written its answer to a call for which `test` holds. */
  const callFinished = (test: (call: FakeGraphCall) => boolean) =>
    new Promise<FakeGraphCall>((resolve) => {
      const listener = (call: FakeGraphCall) => {
        if (!test(call)) return;
        finished.delete(listener);
        resolve(call);
      };
      finished.add(listener);
    });

  it('pauses only the throttled user’s group: another user is answered within the Retry-After', async () => {
    fake.users.throttle.push({ user: 'alice', retryAfterSec: RETRY_AFTER_SEC });
    const aliceThrottled = callFinished(() => fake.userStats('alice').throttled === 1);
    let aliceDone = false;
    const alice = send(proxy, ALICE, 'GET', '/v1.0/me').then((r) => {
      aliceDone = true;
      return r;
    });
    await aliceThrottled;
    // The proxy has read the 429 and paused alice's group once it puts her op back in the queue.
    const deadline = performance.now() + 5_000;
    while (series(await metrics(proxy), 'batch_proxy_requeued_ops_total{reason="429"}') !== 1) {
      expect(performance.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const [bobMe, bobMissing] = await Promise.all([
      send(proxy, BOB, 'GET', '/v1.0/me'),
      send(proxy, BOB, 'GET', '/v1.0/users/nobody-for-bob'),
    ]);
    expect(bobMe.status).toBe(200);
    expect(bobMe.body).toMatchObject({ id: 'bob', displayName: 'bob' });
    expect(bobMissing.status).toBe(404);
    expect(JSON.stringify(bobMissing.body)).toContain('nobody-for-bob');
    expect(aliceDone).toBe(false);

    // Watchable: one group paused, named by its digest on the status page with its queue and pause.
    expect(series(await metrics(proxy), 'batch_proxy_paused_groups')).toBe(1);
    const v1 = (await fetch(`${proxy.adminUrl}/status.json`).then((r) => r.json())) as {
      apps: Array<{ appId: string; pausedGroups: number; groups: Array<Record<string, unknown>> }>;
    };
    const version = v1.apps.find((a) => a.appId === 'v1.0');
    expect(version?.pausedGroups).toBe(1);
    const aliceGroup = version?.groups.find((g) => g.group === digest(ALICE));
    expect(aliceGroup).toMatchObject({ queued: 1, circuit: 'closed' });
    expect(aliceGroup?.pausedMs).toBeGreaterThan(0);
    expect(aliceGroup?.paceMs).toBeGreaterThan(0);
    expect(JSON.stringify(v1)).not.toContain(ALICE.slice(7));

    // By the fake's own clock: bob's calls arrived (and ran) well inside alice's throttle window.
    const throttledAt = fake.userStats('alice').arrivals[0] as number;
    const windowEnd = throttledAt + RETRY_AFTER_SEC * 1000;
    const bob = fake.userStats('bob');
    expect(bob.executed).toBe(2);
    expect(bob.throttled).toBe(0);
    expect(bob.arrivals.length).toBeGreaterThan(0);
    for (const at of bob.arrivals) expect(at).toBeLessThan(windowEnd - 1000);

    // Alice is answered after her Retry-After, never sent early, and her request ran once.
    const aliceMe = await alice;
    expect(aliceMe.status).toBe(200);
    expect(aliceMe.body).toMatchObject({ id: 'alice', displayName: 'alice' });
    const stats = fake.userStats('alice');
    expect(stats).toMatchObject({ throttled: 1, throttledEarly: 0, executed: 1 });
    expect(stats.arrivals).toHaveLength(2);
    expect(stats.arrivals[1] as number).toBeGreaterThanOrEqual(windowEnd);
    // Every $batch carried one user's requests only; bob's left between alice's two.
    const byCredential = fake.batches.map((b) => (b.credential === ALICE ? 'alice' : 'bob'));
    expect(byCredential[0]).toBe('alice');
    expect(byCredential.at(-1)).toBe('alice');
    expect(byCredential.filter((w) => w === 'alice')).toHaveLength(2);
  });
});
