// Chaos: two proxy replicas sharing Redis in front of a fake upstream that fails at random, while
// Redis is restarted and one replica is sent SIGTERM mid-run. Thousands of calls with unique payloads;
// afterwards every accepted call must have had exactly one answer, its own, with no POST executed
// twice and no upstream 429 beyond the injected ones.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, type Fault, signAppToken, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';

const APPS = { app1: 'sk_chaos_app1', app2: 'sk_chaos_app2' };
type AppId = keyof typeof APPS;
const JOBS = Number(process.env.CHAOS_JOBS ?? 1200);
const WORKERS = 120;
const CONVERSATIONS = 40;
/** The upstream's exact limit per app; the proxies are told a little less (headroom for restarts). */
const UPSTREAM_LIMIT = { ratePerSec: 50, burst: 10 };
const PROXY_LIMIT = { ratePerSec: 40, burst: 5 };
const UPSTREAM_TIMEOUT_MS = 1000;

const FAULTS: Fault[] = [
  { status: 503 },
  { status: 500, afterExecute: true },
  { reset: 'before-execute' },
  { reset: 'after-execute' },
  { truncateBody: true },
  { status: 429, retryAfterSec: 1 },
  { delayMs: UPSTREAM_TIMEOUT_MS * 1.5 },
  { notJson: true },
  { notArray: true },
  { dropResultSeq: [0] },
  { duplicateResultSeq: [1] },
  { badStatus: [0] },
  { unknownResultSeq: true },
];

interface Caller {
  label: string;
  app: AppId;
  authorization: string;
}

const CALLERS: Caller[] = (['app1', 'app2'] as const).flatMap((app) => [
  { label: `${app}-key`, app, authorization: `Bearer ${APPS[app]}` },
  {
    label: `${app}-jwt`,
    app,
    authorization: `Bearer ${signAppToken(app, APPS[app], { expiresInSec: 3600, claims: { chaos: true } })}`,
  },
]);

let upstream: FakeUpstream;
let redis: RedisProcess;
let replicas: ProxyProcess[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream({
    apps: APPS,
    limits: { batch: UPSTREAM_LIMIT },
    latencyMs: () => Math.random() * 3,
  });
  redis = await startRedis();
  replicas = await Promise.all(
    ['A', 'B'].map(() =>
      startProxyProcess({
        UPSTREAM_URL: upstream.url,
        REDIS_URL: redis.url,
        REDIS_FALLBACK_SHARE: '0.2',
        LOG_LEVEL: 'warn',
        BATCH_WINDOW_MS: '10',
        BATCH_RATE_PER_SEC: String(PROXY_LIMIT.ratePerSec),
        BATCH_BURST: String(PROXY_LIMIT.burst),
        UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
        UPSTREAM_MAX_ATTEMPTS: '3',
        MAX_WAIT_MS: '20000',
        SHUTDOWN_GRACE_MS: '15000',
      }),
    ),
  );
  for (const app of ['app1', 'app2'] as const) {
    for (let k = 0; k < CONVERSATIONS; k++) {
      const res = await fetch(`${upstream.url}/v1/${app}/conversations/conv-${k}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${APPS[app]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ subject: `chaos ${k}` }),
      });
      expect(res.status).toBe(200);
    }
  }
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await redis?.stop();
  await upstream?.close();
});

type Kind = 'PUT' | 'GET' | 'POST';

interface Outcome {
  job: number;
  kind: Kind;
  replica: string;
  /** 0: no HTTP answer (the call was lost). */
  status: number;
  body: unknown;
  error?: string;
}

/** Where each call goes: round robin over the replicas still taking new calls. */
class Router {
  readonly live: Array<{ name: string; proxy: ProxyProcess }>;
  #next = 0;
  constructor(named: Array<{ name: string; proxy: ProxyProcess }>) {
    this.live = [...named];
  }
  pick(): { name: string; proxy: ProxyProcess } {
    const r = this.live[this.#next++ % this.live.length];
    if (!r) throw new Error('no replica left');
    return r;
  }
  retire(name: string): void {
    const i = this.live.findIndex((r) => r.name === name);
    if (i >= 0) this.live.splice(i, 1);
  }
}

async function send(
  router: Router,
  job: number,
  kind: Kind,
  caller: Caller,
  path: string,
  body?: unknown,
): Promise<Outcome> {
  const target = router.pick();
  try {
    const res = await fetch(`${target.proxy.url}/v1/${caller.app}${path}`, {
      method: kind,
      headers: {
        authorization: caller.authorization,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text: checked below
    }
    return { job, kind, replica: target.name, status: res.status, body: parsed };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return {
      job,
      kind,
      replica: target.name,
      status: 0,
      body: undefined,
      error: `${String(error)} ${cause ?? ''}`,
    };
  }
}

function errorCode(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

describe('chaos', () => {
  it('answers every accepted call exactly once with its own answer through faults, a Redis restart and a SIGTERM', async () => {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const [a, b] = replicas;
    if (!a || !b) throw new Error('replicas did not start');
    const router = new Router([
      { name: 'A', proxy: a },
      { name: 'B', proxy: b },
    ]);
    upstream.faults.random = { probability: 0.05, faults: FAULTS };
    const exits: string[] = [];
    for (const [name, r] of [['A', a] as const, ['B', b] as const]) {
      r.child.once('exit', (code, signal) =>
        exits.push(`${name} exited (code ${code}, signal ${signal}) at ${ms()} ms`),
      );
    }

    const outcomes: Outcome[] = [];
    const problems: string[] = [];
    const postIds = new Map<string, number>();
    let done = 0;
    let redisRestart: Promise<void> | undefined;
    let redisRestartedAt = -1;
    let aStopped: Promise<number | null> | undefined;
    let aStoppedAt = -1;

    // A timeline of the chaos events and of any rate-limit 429 (diagnostics for the summary).
    const timeline: string[] = [];
    let seen429 = 0;
    const watch429 = setInterval(() => {
      if (upstream.stats.rejected429.batch !== seen429) {
        seen429 = upstream.stats.rejected429.batch;
        timeline.push(`${ms()} ms: upstream rate-limit 429 #${seen429}`);
      }
    }, 2);

    /** Chaos events, driven by progress rather than by the clock. */
    const onJobDone = () => {
      done++;
      if (!redisRestart && done >= JOBS / 3) {
        redisRestartedAt = done;
        timeline.push(`${ms()} ms: Redis restart begins`);
        redisRestart = redis.restart().then(() => {
          timeline.push(`${ms()} ms: Redis is back (empty)`);
        });
      }
      if (!aStopped && done >= (2 * JOBS) / 3) {
        timeline.push(`${ms()} ms: SIGTERM to replica A`);
        aStoppedAt = done;
        // New calls go to B from now on; A must still answer everything it accepted.
        router.retire('A');
        aStopped = a.stop('SIGTERM');
      }
    };

    const job = async (n: number) => {
      const caller = CALLERS[n % CALLERS.length] as Caller;
      const custom = { n: String(n), owner: caller.label };
      const put = await send(router, n, 'PUT', caller, `/users/u-${n}`, { name: `user ${n}`, custom });
      outcomes.push(put);
      const get = await send(router, n, 'GET', caller, `/users/u-${n}`);
      outcomes.push(get);
      if (put.status === 200) {
        if (JSON.stringify(put.body) !== '{}')
          problems.push(`misrouted PUT ${n}: ${JSON.stringify(put.body)}`);
        // It was executed and answered: a later read must see it (or fail with a proxy error).
        if (get.status !== 200 && errorCode(get.body) === undefined && get.status !== 0) {
          problems.push(`misrouted GET ${n}: ${get.status} ${JSON.stringify(get.body)} after a 200 PUT`);
        }
      }
      if (get.status === 200) {
        const user = get.body as { id?: unknown; custom?: Record<string, unknown> };
        if (user.id !== `u-${n}` || user.custom?.n !== String(n) || user.custom?.owner !== caller.label) {
          problems.push(`misrouted GET ${n}: ${JSON.stringify(get.body)}`);
        }
      }
      const conv = `conv-${n % CONVERSATIONS}`;
      const post = await send(router, n, 'POST', caller, `/conversations/${conv}/messages`, [
        { text: `m-${n}`, type: 'SystemMessage', custom },
      ]);
      outcomes.push(post);
      if (post.status === 200) {
        const id = (post.body as Array<{ id?: unknown }>)[0]?.id;
        if (typeof id !== 'string') problems.push(`misrouted POST ${n}: ${JSON.stringify(post.body)}`);
        else if (postIds.has(`${caller.app}/${id}`))
          problems.push(`misrouted POST ${n}: id ${id} given twice`);
        else postIds.set(`${caller.app}/${id}`, n);
      }
      onJobDone();
    };

    let nextJob = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (nextJob < JOBS) await job(nextJob++);
      }),
    );
    await redisRestart;
    const aCode = await aStopped;
    const elapsed = performance.now() - started;
    upstream.faults.random = undefined;
    clearInterval(watch429);

    // ---- the reckoning ----
    const lost = outcomes.filter((o) => o.status === 0);
    for (const o of lost) problems.push(`lost ${o.kind} ${o.job} on ${o.replica}: ${o.error}`);

    // Each POST-200's message id names its own text (listed from the fake directly).
    const textOf = new Map<string, string>();
    for (const app of ['app1', 'app2'] as const) {
      for (let k = 0; k < CONVERSATIONS; k++) {
        const res = await fetch(`${upstream.url}/v1/${app}/conversations/conv-${k}/messages?limit=100`, {
          headers: { authorization: `Bearer ${APPS[app]}` },
        });
        const { data } = (await res.json()) as { data: Array<{ id: string; text: string }> };
        for (const m of data) textOf.set(`${app}/${m.id}`, m.text);
      }
    }
    for (const [key, n] of postIds) {
      if (textOf.get(key) !== `m-${n}`)
        problems.push(`misrouted POST ${n}: its id ${key} holds ${textOf.get(key)}`);
    }

    // No POST executed twice; every op ran under its own caller's credential.
    const postRuns = new Map<string, number>();
    const ownerOf = new Map(CALLERS.map((c) => [c.authorization, c.label]));
    for (const e of upstream.executed) {
      if (e.method === 'POST') {
        const text = (e.body as Array<{ text?: string }>)[0]?.text ?? '';
        postRuns.set(text, (postRuns.get(text) ?? 0) + 1);
      }
      const owner =
        (e.body as { custom?: { owner?: string } } | undefined)?.custom?.owner ??
        (Array.isArray(e.body) ? (e.body[0] as { custom?: { owner?: string } }).custom?.owner : undefined);
      if (owner !== undefined && ownerOf.get(e.credential) !== owner) {
        problems.push(
          `misrouted credential: ${e.method} ${e.path} of ${owner} ran as ${ownerOf.get(e.credential)}`,
        );
      }
    }
    const duplicated = [...postRuns].filter(([, runs]) => runs > 1);
    for (const [text, runs] of duplicated) problems.push(`duplicated POST ${text}: executed ${runs} times`);
    for (const o of outcomes.filter((x) => x.kind === 'POST' && x.status === 200)) {
      if (postRuns.get(`m-${o.job}`) !== 1)
        problems.push(`POST ${o.job} answered 200 but executed ${postRuns.get(`m-${o.job}`) ?? 0} times`);
    }

    // ---- the summary ----
    const row = (kind: Kind) => {
      const mine = outcomes.filter((o) => o.kind === kind);
      const count = (f: (o: Outcome) => boolean) => String(mine.filter(f).length).padStart(6);
      return `${kind.padEnd(5)}|${count(() => true)} |${count((o) => o.status >= 200 && o.status < 300)} |${count(
        (o) => o.status >= 400 && o.status < 500 && errorCode(o.body) === undefined,
      )} |${count((o) => errorCode(o.body) !== undefined && o.status >= 502)} |${count(
        (o) => errorCode(o.body) === 'PROXY_DEADLINE_EXCEEDED' || errorCode(o.body) === 'PROXY_QUEUE_FULL',
      )} |${count((o) => o.status === 0)} |${count((o) => o.replica === 'A')} |${count((o) => o.replica === 'B')}`;
    };
    const misrouted = problems.filter((p) => p.startsWith('misrouted')).length;
    console.log(
      [
        `chaos: ${outcomes.length} calls (${JOBS} jobs x PUT/GET/POST) in ${(elapsed / 1000).toFixed(1)} s over 2 replicas; ` +
          `Redis restarted after job ${redisRestartedAt}, replica A SIGTERM after job ${aStoppedAt} (exit ${aCode})`,
        'kind |  sent |   2xx | upstr 4xx | proxy 5xx | shed | lost | via A | via B',
        row('PUT'),
        row('GET'),
        row('POST'),
        `upstream: ${upstream.stats.batchCalls} batch calls, ${upstream.stats.faultsApplied} faults injected, ` +
          `${upstream.stats.rejected429.batch} rate-limit 429s; POSTs executed ${[...postRuns.values()].reduce((x, y) => x + y, 0)}`,
        `timeline: ${[...timeline, ...exits].join('; ')}`,
        ...problems.slice(0, 20),
        `lost ${lost.length}, duplicated ${duplicated.length}, misrouted ${misrouted}`,
      ].join('\n'),
    );

    for (const [name, r] of [['A', a] as const, ['B', b] as const]) {
      if (r.child.exitCode !== 0 && r.child.exitCode !== null)
        console.log(`replica ${name} logs:\n${r.logs().slice(-3000)}`);
      if (r.child.signalCode !== null) console.log(`replica ${name} logs:\n${r.logs().slice(-3000)}`);
    }
    if (upstream.stats.rejected429.batch > 0) {
      // What the replicas said about Redis, on the same timeline as the 429s above.
      const t0 = performance.timeOrigin + started;
      for (const [name, r] of [['A', a] as const, ['B', b] as const]) {
        for (const line of r.logs().split('\n')) {
          if (!/redis/i.test(line)) continue;
          const { time, msg, err } = JSON.parse(line) as { time: number; msg: string; err?: string };
          console.log(`${Math.round(time - t0)} ms: replica ${name}: ${msg}${err ? ` (${err})` : ''}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(aCode).toBe(0);
    expect(upstream.stats.rejected429.batch).toBe(0);
    expect(upstream.stats.faultsApplied).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.kind === 'POST' && o.status === 200).length).toBeGreaterThan(JOBS / 2);
    expect(b.child.exitCode).toBeNull();
    expect(elapsed).toBeLessThan(60_000);
  });
});
