// Fate isolation as a property (SPEC §5, §7b, §8d), on the engine's manual clock: no wall clock, no
// sleeps, no sockets.
//
// Several groups (app + credential) — one app with several credentials, and a second app — send
// reads and writes at random instants, each group to resources of its own (`/users/g{i}r{n}` and
// its `/messages` child), so no two groups ever wait for each other by the ordering rules. A fake
// upstream answers each group's k-th batch call by that group's fault plan: fine; a 200 batch with
// per-op 429s inside it (with Retry-After); a whole-batch 5xx; a connection reset; a whole-call 401;
// a slow call (700 ms); a whole-batch 429. Faults come in runs (an outage opens a breaker). Callers go
// away at random (Submission.signal). Both dialects: Graph (`throttleScope: 'credential'`, chains)
// and TalkJS (a per-op 429 is the op's own answer; everything else applies).
//
// Property 1 — every caller is answered exactly once, correctly and in time, and the engine drains
// (faults on any group, any number of groups per app):
//  - every submission's promise settles, and the observer's answers (one per waiter finished) plus
//    the door's refusals plus the callers that went away add up to the submissions exactly — a
//    waiter finished twice (answered after its abort, by the upstream and by a shed…) breaks the sum;
//  - a 2xx answer is the caller's own op (its write's id, or its read's path and query) run under the
//    caller's own credential, and every op reaches the upstream under its own group's credential; a
//    caller never sees a proxy-internal error, a chain's 424 or (Graph) a per-op 429 the proxy should
//    have retried;
//  - nothing waits forever: each caller is answered within its deadline plus one (slow) upstream call
//    of its arrival; then nothing is queued or in flight, and a further idle minute sends nothing;
//  - a POST or PATCH goes out at most once in a call that may have run it (a 200 that did not throttle
//    it, a 5xx, a reset): never executed twice by the proxy (SPEC §8).
//
// Property 2 — isolation: group 0 of app 0 is healthy (its upstream answers are always fine). The
// same traffic runs twice: with the other groups' faults, and with none at all. The healthy group's
// upstream calls (instants and bodies) and its callers' answers (status, body, headers, error code,
// Server-Timing fields but the process-wide call id, and the instant each is answered) must be
// IDENTICAL. The bound on its delay is 0 ms, not "one window plus one interval" or "one batch call",
// because under these conditions no engine rule makes one group wait for another:
//  - a group's flush leaves when its batch is full or its own oldest op's window ends (the token
//    economy's hold is 0 above a tenth of the burst), once the app's bucket grants, its own breaker
//    lets it and its own pause is over; sending does not wait for the call (the pump fires it and
//    goes on), so another group's call in flight, however slow, delays nobody;
//  - the budget is generous (1000/s, burst 1000; a run spends a few dozen tokens): it never denies and
//    never holds, and every run checks this through the observer, so the premise cannot silently
//    lapse. A denial would delay by max(20 ms, interval) per retry and by one interval per grant
//    another group takes first (fair turns, SPEC §8d) — budget sharing, which is not claimed here;
//  - one or two other groups share the healthy group's app (never a whole-batch 429 there: that is
//    the app's bucket by the upstream's own word). A throttle or an open breaker becomes the app's
//    only when three groups (DEFAULT_DOMAINS.appWideGroups, "several") are paused or open together —
//    by design, so it is kept out of reach; the test fails first if that threshold drops to two;
//  - in the `tight` variant (5/s, burst 1: every call of an app waits its turn, backlogs outlast
//    deadlines) the healthy group is alone in its app and every faulty group is in the other one:
//    budgets, breakers and pauses are per app;
//  - the fake upstream's latency is a function of the call's content (the healthy group's calls take
//    the same time in both runs) plus an irrational fraction, callers go away at half milliseconds,
//    arrivals and windows fall on whole ones, and the healthy group never retries nor pauses: no two
//    events it can tell apart share an instant, where their order could depend on timers set by
//    other groups.
// Not claimed: delays through a shared budget the faulty groups spend (retries, bisections, probes),
// the app-wide rules above, shared resources (ordering across credentials is by design), the queue
// bound (QUEUE_MAX_OPS, far above these runs), pass-through and the single lane (not configured).
//
// Cost: NUM_RUNS = 150 cases per property (PROPERTY_RUNS overrides), each one (property 1) or two
// (property 2) engine runs of 4–40 calls over a few simulated seconds: about 2 s of test time, 3 s
// with vitest's start, on a 2-core machine.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { methodSemantics } from '../dialect/dialect.js';
import { graph } from '../dialect/graph.js';
import { talkjs } from '../dialect/talkjs.js';
import {
  type FakeCall,
  type FakeOp,
  fakeTransport,
  graphWire,
  talkjsWire,
} from '../testing/fake-transport.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { DEFAULT_DOMAINS } from './domains.js';
import type { Answer } from './op.js';
import { Scheduler } from './scheduler.js';

const NUM_RUNS = Number(process.env.PROPERTY_RUNS) || 150;

type DialectName = 'talkjs' | 'graph';
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

type Fault =
  | { readonly kind: 'ok' }
  /** A 200 batch in which the ops at the mask's set bits (position mod 5) are throttled. */
  | { readonly kind: 'op429'; readonly mask: number; readonly retryAfter: string }
  | { readonly kind: '5xx'; readonly status: number }
  | { readonly kind: 'reset' }
  /** Answered fine, after SLOW_MS: what waits behind it on the same resource outlives its deadline. */
  | { readonly kind: 'slow' }
  | { readonly kind: '401' }
  | { readonly kind: 'batch429'; readonly retryAfter: string };

const OK: Fault = { kind: 'ok' };

interface GroupSpec {
  readonly app: 0 | 1;
  /** The fault of the group's k-th upstream call; past the end, calls are fine. */
  readonly faults: readonly Fault[];
}

interface CallSpec {
  readonly group: number;
  readonly method: Method;
  readonly res: number;
  readonly child: boolean;
  /** A read's query (few values: identical reads collapse). */
  readonly q: number;
  /** Whole ms to the next arrival. */
  readonly gap: number;
  /** The caller goes away this many ms (plus half a ms) after its arrival. */
  readonly abortAfter: number | null;
}

interface Scenario {
  readonly dialect: DialectName;
  readonly budget: 'generous' | 'tight';
  readonly verified: boolean;
  readonly windowMs: number;
  /** Each op's deadline; the shorter one makes pauses and backlogs outlast it. */
  readonly maxWaitMs: number;
  readonly breakerFailures: number;
  readonly maxOps: number;
  readonly maxAttempts: number;
  /** Group 0 is the healthy one in property 2. */
  readonly groups: readonly GroupSpec[];
  readonly calls: readonly CallSpec[];
}

const GENEROUS = { ratePerSec: 1_000, burst: 1_000 };
/** One call per 200 ms: a backlog of a few dozen calls outlasts the shorter deadline. */
const TIGHT = { ratePerSec: 5, burst: 1 };
/** Other groups that may share the healthy group's app: one fewer than "several" (domains.ts). */
const MAX_PEERS = 2;
/** Upstream latency: 1–7 ms plus an irrational fraction (see the header). */
const FRACTION = Math.SQRT2 - 1;
const MAX_LATENCY_MS = 8;
const SLOW_MS = 700;

const APPS: Record<DialectName, readonly [string, string]> = {
  talkjs: ['appA', 'appB'],
  graph: ['v1.0', 'beta'],
};

const credentialOf = (group: number) => `Bearer g${group}`;
const pathOf = (group: number, call: CallSpec) =>
  `/users/g${group}r${call.res}${call.child ? '/messages' : ''}`;
const idOf = (index: number, group: number) => `g${group}.${index}`;

function opOf(dialect: DialectName, call: CallSpec, index: number): OpRequest {
  const path = pathOf(call.group, call);
  const read = call.method === 'GET';
  const body = read ? undefined : JSON.stringify({ id: idOf(index, call.group) });
  if (dialect === 'talkjs')
    return {
      method: call.method,
      path,
      query: read ? { q: String(call.q) } : {},
      body,
      apiVersion: undefined,
    };
  return {
    method: call.method,
    path,
    query: {},
    body,
    apiVersion: undefined,
    headers: {},
    search: read ? `?q=${call.q}` : '',
  };
}

/** What a caller's 2xx answer must say: its own op, run under its own credential. */
function expectedBody(call: CallSpec, index: number): unknown {
  const by = credentialOf(call.group);
  return call.method === 'GET'
    ? { path: pathOf(call.group, call), q: String(call.q), by }
    : { id: idOf(index, call.group), by };
}

/** FNV-1a: a latency that depends on the call's content only. */
function latencyOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return 1 + ((h >>> 0) % 7) + FRACTION;
}

/**
 * A batch-only upstream on the manual clock that answers each group's k-th call by its plan.
 * `mayHaveRun`: per write id, the calls that may have run it (a 200 that did not throttle it, a 5xx,
 * a reset); `problems`: anything the engine must never send (an op under another group's credential,
 * a single call).
 */
function faultyUpstream(
  clock: ManualClock,
  dialect: DialectName,
  /** `${app}\n${credential}` → faults. */
  plan: ReadonlyMap<string, readonly Fault[]>,
) {
  const upstream = fakeTransport(clock, { wire: dialect === 'graph' ? graphWire : talkjsWire });
  const mayHaveRun = new Map<string, number>();
  const problems: string[] = [];
  const count = new Map<string, number>();
  const faultOf = new Map<FakeCall, Fault>();
  const appOf = (call: FakeCall) =>
    dialect === 'talkjs'
      ? decodeURIComponent(/^\/v1\/([^/]+)\/batch$/.exec(call.request.path)?.[1] ?? '')
      : (/^\/([^/]+)\/\$batch$/.exec(call.request.path)?.[1] ?? '');
  // A read's `q` and a write's `id`, wherever the wire carries them.
  const qOf = (op: FakeOp) =>
    dialect === 'talkjs'
      ? (op.body as { q?: string }).q
      : (new URLSearchParams(op.path.split('?')[1] ?? '').get('q') ?? undefined);
  const idOfOp = (op: FakeOp) => (op.method === 'GET' ? undefined : (op.body as { id?: string }).id);
  const ran = (op: FakeOp) => {
    const id = idOfOp(op);
    if (id !== undefined) mayHaveRun.set(id, (mayHaveRun.get(id) ?? 0) + 1);
  };

  // The call's fault is drawn when it arrives (its latency depends on it): the group's k-th.
  upstream.latencyMs = (call) => {
    if (call.lane === 'single') return 0;
    const credential = call.authorization ?? '';
    const group = `${appOf(call)}\n${credential}`;
    const k = count.get(group) ?? 0;
    count.set(group, k + 1);
    const fault = plan.get(group)?.[k] ?? OK;
    faultOf.set(call, fault);
    const own = `/users/${credential.replace(/^Bearer /, '')}r`;
    for (const op of call.ops)
      if (!op.path.startsWith(own)) problems.push(`${op.path.split('?')[0]} sent with ${credential}`);
    return latencyOf((call.request.body ?? '') + credential) + (fault.kind === 'slow' ? SLOW_MS : 0);
  };
  upstream.respond = (call) => {
    if (call.lane === 'single') {
      problems.push(`not a batch call: ${call.request.method} ${call.request.path}`);
      return { status: 500, headers: {}, body: '{}' };
    }
    const fault = faultOf.get(call) ?? OK;
    switch (fault.kind) {
      case '5xx':
        for (const op of call.ops) ran(op);
        return { status: fault.status, headers: {}, body: '{}' };
      case 'reset':
        for (const op of call.ops) ran(op);
        return new Error('socket hang up');
      case '401':
        return { status: 401, headers: {}, body: '{"error":"unauthorized"}' };
      case 'batch429':
        return { status: 429, headers: { 'retry-after': fault.retryAfter }, body: '{}' };
      default:
        return undefined;
    }
  };
  // Graph answers in any order (here reversed), each with its own headers; a serial chain's rest is
  // 424 after a failed request and does not run (the fake's dependsOn rule).
  if (dialect === 'graph') upstream.order = (ops) => [...ops].reverse();
  upstream.answerOp = (op, call) => {
    const fault = faultOf.get(call) ?? OK;
    const headers = { 'content-type': 'application/json' };
    if (fault.kind === 'op429' && (fault.mask >> (call.ops.indexOf(op) % 5)) & 1)
      return {
        status: 429,
        headers: { ...headers, 'retry-after': fault.retryAfter },
        body: { error: { code: 'TooManyRequests' } },
      };
    ran(op);
    const by = call.authorization ?? '';
    return op.method === 'GET'
      ? { status: 200, headers, body: { path: op.path.split('?')[0], q: qOf(op), by } }
      : { status: op.method === 'POST' ? 201 : 200, headers, body: { id: idOfOp(op), by } };
  };
  return { upstream, appOf, mayHaveRun, problems };
}

interface Record_ {
  readonly index: number;
  readonly call: CallSpec;
  readonly arrivedAt: number;
  answer?: Answer;
  answeredAt?: number;
}

interface RunResult {
  /** The healthy group's app was denied a batch token, or held a batch for one (token economy). */
  readonly budgetWaited: boolean;
  /** The healthy group's callers: what each got, and when. */
  readonly healthy: unknown[];
  /** The healthy group's upstream calls. */
  readonly healthyCalls: Array<{ at: number; body: string }>;
}

/** The answer as its caller sees it, but the process-wide call id (other groups' calls move it). */
function seen(answer: Answer | undefined): unknown {
  if (!answer) return undefined;
  const { callId: _, ...timing } = answer.timing ?? { callId: 0 };
  return answer.kind === 'result'
    ? { status: answer.status, body: answer.body, headers: answer.headers, timing }
    : { error: answer.error.code, retryAfterSec: answer.error.retryAfterSec, timing };
}

const ALLOWED_ERRORS = new Set([
  'PROXY_CLIENT_CLOSED',
  'PROXY_CIRCUIT_OPEN',
  'PROXY_DEADLINE_EXCEEDED',
  'PROXY_UPSTREAM_UNAVAILABLE',
]);

/** Runs a scenario, with the groups' faults or without any; checks property 1 on the way. */
async function run(s: Scenario, faulty: boolean): Promise<RunResult> {
  const apps = APPS[s.dialect];
  const clock = new ManualClock();
  const plan = new Map<string, readonly Fault[]>();
  if (faulty)
    for (const [i, g] of s.groups.entries()) plan.set(`${apps[g.app]}\n${credentialOf(i)}`, g.faults);
  const { upstream, appOf, mayHaveRun, problems } = faultyUpstream(clock, s.dialect, plan);
  let observed = 0;
  let refusedAtDoor = 0;
  const denied = new Set<string>();
  const held = new Set<string>();
  const scheduler = new Scheduler(
    schedulerOptions({
      dialect: s.dialect === 'graph' ? graph : talkjs,
      upstream,
      clock,
      random: () => 0.5, // back-offs of whole ms
      windowMs: s.windowMs,
      maxOps: s.maxOps,
      maxWaitMs: s.maxWaitMs,
      maxAttempts: s.maxAttempts,
      batchLimit: s.budget === 'generous' ? GENEROUS : TIGHT,
      leaseMs: 1_000,
      breakerFailures: s.breakerFailures,
      breakerOpenMs: 300,
      breakerMaxOpenMs: 1_200,
      observer: {
        onAnswer: () => observed++,
        // Refused at the door: answered at once, not through onAnswer (a shed of queued ops is).
        onShed: (e) => {
          if (e.code === 'PROXY_CIRCUIT_OPEN' || e.code === 'PROXY_QUEUE_FULL') refusedAtDoor++;
        },
        onLimiter: (e) => {
          if (!e.granted) denied.add(e.appId);
        },
        onFlush: (e) => {
          if (e.reason === 'hold') held.add(e.appId);
        },
      },
    }),
  );

  const records: Record_[] = [];
  for (const [index, call] of s.calls.entries()) {
    const group = s.groups[call.group] as GroupSpec;
    const controller = call.abortAfter === null ? undefined : new AbortController();
    if (controller && call.abortAfter !== null)
      clock.setTimeout(() => controller.abort(), call.abortAfter + 0.5);
    const record: Record_ = { index, call, arrivedAt: clock.now() };
    records.push(record);
    void scheduler
      .submit({
        appId: apps[group.app],
        credential: credentialOf(call.group),
        op: opOf(s.dialect, call, index),
        ...(controller ? { signal: controller.signal } : {}),
        verified: s.verified,
      })
      .then((answer) => {
        record.answer = answer;
        record.answeredAt = clock.now();
      });
    await clock.advance(call.gap);
  }
  await clock.advance(s.maxWaitMs + SLOW_MS + 2 * MAX_LATENCY_MS);

  // Property 1: every caller answered, exactly once, correctly, in time; nothing left behind.
  const unanswered = records.filter((r) => r.answer === undefined).map((r) => r.index);
  expect(unanswered, 'callers never answered').toEqual([]);
  const closed = records.filter(
    (r) => r.answer?.kind === 'error' && r.answer.error.code === 'PROXY_CLIENT_CLOSED',
  );
  expect(observed + refusedAtDoor + closed.length, 'answers given (observer + door + aborts)').toBe(
    records.length,
  );
  for (const r of records) {
    const answer = r.answer as Answer;
    const what = `call ${r.index} (${r.call.method} ${pathOf(r.call.group, r.call)}, group ${r.call.group})`;
    expect((r.answeredAt as number) - r.arrivedAt, `${what} waited`).toBeLessThanOrEqual(
      s.maxWaitMs + SLOW_MS + MAX_LATENCY_MS,
    );
    if (answer.kind === 'error') {
      expect(ALLOWED_ERRORS.has(answer.error.code), `${what}: ${answer.error.code}`).toBe(true);
      continue;
    }
    if (answer.status < 300) expect(JSON.parse(answer.body), what).toEqual(expectedBody(r.call, r.index));
    else if (answer.status === 401) expect(answer.body, what).toBe('{"error":"unauthorized"}');
    // TalkJS has no per-op retry: its op's 429 is the op's answer. Graph's are the proxy's to retry.
    else
      expect(s.dialect === 'talkjs' && answer.status === 429, `${what}: status ${answer.status}`).toBe(true);
  }
  expect(problems).toEqual([]);
  for (const r of records) {
    if (methodSemantics(r.call.method).retrySafe) continue;
    const id = idOf(r.index, r.call.group);
    expect(mayHaveRun.get(id) ?? 0, `${id} (${r.call.method}) may have run`).toBeLessThanOrEqual(1);
  }
  expect(scheduler.pending).toBe(0);
  for (const app of scheduler.snapshot())
    expect([app.appId, app.queued, app.inflight]).toEqual([app.appId, 0, 0]);
  await scheduler.idle();
  const sent = upstream.calls.length;
  await clock.advance(60_000);
  expect(upstream.calls.length, 'calls sent while idle').toBe(sent);

  const healthyApp = apps[(s.groups[0] as GroupSpec).app];
  const healthyCredential = credentialOf(0);
  return {
    budgetWaited: denied.has(healthyApp) || held.has(healthyApp),
    healthy: records
      .filter((r) => r.call.group === 0)
      .map((r) => ({
        call: r.index,
        arrivedAt: r.arrivedAt,
        answeredAt: r.answeredAt,
        answer: seen(r.answer),
      })),
    healthyCalls: upstream.calls
      .filter((c) => appOf(c) === healthyApp && c.authorization === healthyCredential)
      .map((c) => ({ at: c.at, body: c.request.body ?? '' })),
  };
}

// --- arbitraries -------------------------------------------------------------------------------------

// constantFrom favours (and shrinks to) its first value: a pause that can be told from none.
const retryAfterArb = fc.constantFrom('1', '0.3', '2', '0.05', '0');

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(OK) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('op429' as const),
      mask: fc.integer({ min: 1, max: 31 }),
      retryAfter: retryAfterArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('5xx' as const), status: fc.constantFrom(500, 502, 503) }),
  },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: 'reset' }) },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: 'slow' }) },
  { weight: 2, arbitrary: fc.constant<Fault>({ kind: '401' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('batch429' as const), retryAfter: retryAfterArb }) },
);

const groupArb = fc.record({
  app: fc.constantFrom<0 | 1>(0, 1),
  // In runs: an outage is several failed calls in a row (what opens a breaker).
  faults: fc
    .array(fc.record({ fault: faultArb, times: fc.integer({ min: 1, max: 3 }) }), { maxLength: 6 })
    .map((runs) => runs.flatMap(({ fault, times }) => Array.from({ length: times }, () => fault))),
});

const callArb = fc.record({
  /** 0–3: the first group (the healthy one in property 2); 4–6: the next (its peer); else any other. */
  who: fc.integer({ min: 0, max: 9 }),
  method: fc.constantFrom<Method>('GET', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
  res: fc.integer({ min: 0, max: 2 }),
  child: fc.boolean(),
  q: fc.integer({ min: 0, max: 1 }),
  gap: fc.constantFrom(0, 0, 1, 3, 10, 40, 150),
  abortAfter: fc.option(fc.integer({ min: 0, max: 30 }), { freq: 5 }),
});

const rawArb = fc.record({
  // Graph's per-op 429 pauses a group, and a generous budget puts peers beside the healthy group:
  // the cases where most can go wrong come more often.
  dialect: fc.constantFrom<DialectName>('graph', 'graph', 'talkjs'),
  budget: fc.constantFrom<'generous' | 'tight'>('generous', 'generous', 'generous', 'tight'),
  verified: fc.boolean(),
  windowMs: fc.constantFrom(2, 5),
  maxWaitMs: fc.constantFrom(3_000, 600),
  breakerFailures: fc.constantFrom(2, 1),
  maxOps: fc.constantFrom(2, 3, 5),
  maxAttempts: fc.integer({ min: 1, max: 3 }),
  first: groupArb,
  others: fc.array(groupArb, { minLength: 1, maxLength: 5 }),
  calls: fc.array(callArb, { minLength: 4, maxLength: 40 }),
});

type Raw = typeof rawArb extends fc.Arbitrary<infer T> ? T : never;

function callsOf(raw: Raw, groups: number): CallSpec[] {
  return raw.calls.map(({ who, ...call }) => ({
    ...call,
    group: who < 4 ? 0 : who < 7 ? 1 : 1 + (who % (groups - 1)),
  }));
}

/** Property 1: faults anywhere, the first group included, any number of groups per app. */
function anyFaults(raw: Raw): Scenario {
  const groups = [raw.first, ...raw.others];
  return { ...raw, groups, calls: callsOf(raw, groups.length) };
}

/**
 * Property 2: the first group is healthy, in app 0. With a generous budget, one to MAX_PEERS faulty
 * groups share its app (none with a tight one), and none of them gets a whole-batch 429 — the rest
 * go to app 1, where anything goes.
 */
function isolated(raw: Raw): Scenario {
  let peers = 0;
  const others = raw.others.map((g, i): GroupSpec => {
    // With a generous budget the first other group is always a peer: the closest neighbour to fault.
    const app = raw.budget === 'generous' && (g.app === 0 || i === 0) && peers < MAX_PEERS ? 0 : 1;
    if (app === 0) peers++;
    return { app, faults: app === 0 ? g.faults.map((f) => (f.kind === 'batch429' ? OK : f)) : g.faults };
  });
  const groups: GroupSpec[] = [{ app: 0, faults: [] }, ...others];
  return { ...raw, groups, calls: callsOf(raw, groups.length) };
}

describe('fate isolation properties (manual clock)', () => {
  it('answers every caller exactly once, correctly and in time, through per-group faults and aborts; drains', async () => {
    await fc.assert(
      fc.asyncProperty(rawArb.map(anyFaults), async (scenario) => {
        await run(scenario, true);
      }),
      { numRuns: NUM_RUNS },
    );
  }, 60_000);

  it('a healthy group gets the same answers at the same instants whatever the other groups’ upstream does', async () => {
    // The premise of the bound: "several" groups make a throttle or an outage the app's (domains.ts).
    expect(DEFAULT_DOMAINS.appWideGroups).toBeGreaterThan(MAX_PEERS);
    await fc.assert(
      fc.asyncProperty(rawArb.map(isolated), async (scenario) => {
        const withFaults = await run(scenario, true);
        const without = await run(scenario, false);
        expect(withFaults.healthy, 'the healthy group’s answers and their instants').toEqual(without.healthy);
        expect(withFaults.healthyCalls, 'the healthy group’s upstream calls').toEqual(without.healthyCalls);
        // The premise of the 0 ms bound with a generous budget: it never made the healthy app wait.
        if (scenario.budget === 'generous')
          expect(
            [withFaults.budgetWaited, without.budgetWaited],
            'the healthy app waited for a token',
          ).toEqual([false, false]);
      }),
      { numRuns: NUM_RUNS },
    );
  }, 60_000);
});
