// Shared pieces of the fleet-fault tests (test/chaos/*.test.ts) and of the soak (test/bench/soak.ts):
// closed-loop callers with ops that name themselves, the log lines a replica writes (as events), its
// metrics and status page, and how a transport error is told apart by cause.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { FakeUpstream } from '../fake-upstream/index.js';
import type { ProxyProcess } from '../harness/process.js';

export interface CallRecord {
  id: string;
  replica: string;
  method: 'GET' | 'POST' | 'PUT';
  /** performance.now() at send and at answer (or error). */
  sentAt: number;
  doneAt: number;
  /** 0: no HTTP answer (a transport error; see `cause`). */
  status: number;
  cause?: string;
  /** The proxy's error code when it answered with one of its own errors. */
  code?: string;
}

/** A transport error's cause, by the names a platform engineer greps for. */
export function causeOf(error: unknown): string {
  const e = error as { code?: string; name?: string; message?: string; cause?: unknown };
  const inner = e.cause as { code?: string; name?: string; message?: string } | undefined;
  const code = inner?.code ?? e.code;
  if (code === 'ECONNRESET') return 'ECONNRESET';
  if (code === 'ECONNREFUSED') return 'ECONNREFUSED';
  if (code === 'EPIPE') return 'EPIPE';
  if (code === 'UND_ERR_SOCKET') return 'socket closed';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout';
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || inner?.name === 'TimeoutError')
    return 'timeout';
  if (code === 'ECONNABORTED') return 'ECONNABORTED';
  if (e.message?.includes('socket hang up')) return 'socket hang up';
  return code ?? e.name ?? 'unknown';
}

/** Counts by key, sorted by key: `{ ECONNRESET: 2, timeout: 1 }`. */
export function countBy<T>(items: T[], key: (t: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** One undici pool per replica, so a dead replica's sockets never serve the others' calls. */
export function agentFor(options: { keepAliveTimeout?: number; connections?: number } = {}): Agent {
  return new Agent({
    keepAliveTimeout: options.keepAliveTimeout ?? 4_000,
    connections: options.connections ?? 256,
    pipelining: 1,
  });
}

export interface SendOptions {
  replica: { name: string; proxy: ProxyProcess; agent: Agent };
  app: string;
  authorization: string;
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: unknown;
  id: string;
  timeoutMs: number;
}

/** One call; never throws: a transport error becomes status 0 with its cause. */
export async function send(o: SendOptions): Promise<CallRecord> {
  const sentAt = performance.now();
  const base = { id: o.id, replica: o.replica.name, method: o.method, sentAt };
  try {
    const res = await request(`${o.replica.proxy.url}/v1/${o.app}${o.path}`, {
      method: o.method,
      dispatcher: o.replica.agent,
      headers: {
        authorization: o.authorization,
        ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
    const text = await res.body.text();
    let code: string | undefined;
    if (res.statusCode >= 400) {
      try {
        const parsed = JSON.parse(text) as { error?: { code?: unknown } };
        if (typeof parsed.error?.code === 'string') code = parsed.error.code;
      } catch {
        // not JSON: no proxy code
      }
    }
    return { ...base, doneAt: performance.now(), status: res.statusCode, ...(code ? { code } : {}) };
  } catch (error) {
    return { ...base, doneAt: performance.now(), status: 0, cause: causeOf(error) };
  }
}

/** The text of a POST op that names its call: the upstream's records then say who ran it. */
export const opText = (id: string) => `op:${id}`;

/** How many times the upstream executed each POST op sent by `send` with body [{text: opText(id)}]. */
export function executions(upstream: FakeUpstream): Map<string, number> {
  const runs = new Map<string, number>();
  for (const e of upstream.executed) {
    if (e.method !== 'POST' || !Array.isArray(e.body)) continue;
    const text = (e.body[0] as { text?: unknown } | undefined)?.text;
    if (typeof text === 'string' && text.startsWith('op:'))
      runs.set(text.slice(3), (runs.get(text.slice(3)) ?? 0) + 1);
  }
  return runs;
}

/** A replica's log lines as events: each with when the test saw it (performance.now()). */
export class LogWatch {
  readonly lines: Array<{ at: number; text: string }> = [];
  readonly #waiters = new Set<() => void>();
  #partial = '';

  constructor(proxy: ProxyProcess) {
    const take = (chunk: Buffer) => {
      const text = this.#partial + chunk.toString();
      const parts = text.split('\n');
      this.#partial = parts.pop() ?? '';
      const at = performance.now();
      for (const line of parts) this.lines.push({ at, text: line });
      for (const check of this.#waiters) check();
    };
    proxy.child.stdout?.on('data', take);
    proxy.child.stderr?.on('data', take);
  }

  /** How many lines so far contain `text`. */
  count(text: string): number {
    return this.lines.filter((l) => l.text.includes(text)).length;
  }

  /** The first line containing `text` at index ≥ `from`; resolves when it comes, rejects after the bound. */
  next(text: string, from: number, timeoutMs: number): Promise<{ at: number; text: string; index: number }> {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.lines.length; i++) {
          const line = this.lines[i];
          if (line?.text.includes(text)) {
            this.#waiters.delete(check);
            clearTimeout(timer);
            resolve({ ...line, index: i });
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no log line containing ${JSON.stringify(text)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}

/** Prometheus text → value of the series `name` whose labels include every `labels` pair (summed). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[3] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) {
      sum += Number(m[4]);
      found = true;
    }
  }
  return found ? sum : Number.NaN;
}

export async function scrape(proxy: ProxyProcess): Promise<string> {
  const res = await fetch(`${proxy.adminUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return res.text();
}

export async function statusJson(proxy: ProxyProcess): Promise<{ redis?: string } & Record<string, unknown>> {
  const res = await fetch(`${proxy.adminUrl}/status.json`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as { redis?: string };
}

/** Percentile (0–100) of a list of numbers; NaN for an empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * Closed-loop callers: `workers` loops, each sending one call after another to the replica `route`
 * picks, until `stop()` is called. Writes (POST a message naming its call) every `writeEvery`th call,
 * reads otherwise. Every record is kept.
 */
export class ClosedLoop {
  readonly records: CallRecord[] = [];
  /** Which replica each call was sent to, from the moment it was sent. */
  readonly routed = new Map<string, string>();
  #stopped = false;
  #running: Promise<void>;
  #seq = 0;

  constructor(
    readonly opts: {
      workers: number;
      route: (n: number) => { name: string; proxy: ProxyProcess; agent: Agent };
      apps: Array<{ app: string; authorization: string; conversation: string }>;
      writeEvery: number;
      timeoutMs: number;
      tag: string;
      /** Run once the callers stopped (closing their agents). */
      close?: () => Promise<unknown>;
    },
  ) {
    this.#running = Promise.all(Array.from({ length: opts.workers }, (_, w) => this.#loop(w))).then(() => {});
  }

  async #loop(worker: number): Promise<void> {
    while (!this.#stopped) {
      const n = this.#seq++;
      const target = this.opts.apps[n % this.opts.apps.length];
      if (!target) return;
      const id = `${this.opts.tag}-${n}`;
      const write = n % this.opts.writeEvery === 0;
      const replica = this.opts.route(worker);
      this.routed.set(id, replica.name);
      const record = await send({
        replica,
        app: target.app,
        authorization: target.authorization,
        method: write ? 'POST' : 'GET',
        path: write
          ? `/conversations/${target.conversation}-${worker % 20}/messages`
          : `/users/w-${worker % 20}`,
        ...(write ? { body: [{ text: opText(id), type: 'SystemMessage' }] } : {}),
        id,
        timeoutMs: this.opts.timeoutMs,
      });
      this.records.push(record);
    }
  }

  async stop(): Promise<CallRecord[]> {
    this.#stopped = true;
    await this.#running;
    await this.opts.close?.();
    return this.records;
  }
}

/**
 * The fleet's usual load: 40 closed-loop callers spread over the replicas (each with its own
 * agent, closed by `stop()`), one app, a write every fifth call, each call bounded a little past
 * MAX_WAIT_MS.
 */
export function fleetLoad(
  replicas: ReadonlyArray<{ name: string; proxy: ProxyProcess }>,
  app: { app: string; secret: string; conversation: string },
  maxWaitMs: number,
  tag: string,
): ClosedLoop {
  const targets = replicas.map((r) => ({ name: r.name, proxy: r.proxy, agent: agentFor() }));
  return new ClosedLoop({
    workers: 40,
    route: (w) => targets[w % targets.length] as (typeof targets)[number],
    apps: [{ app: app.app, authorization: `Bearer ${app.secret}`, conversation: app.conversation }],
    writeEvery: 5,
    timeoutMs: maxWaitMs + 10_000,
    tag,
    close: () => Promise.all(targets.map((t) => t.agent.close())),
  });
}

/** A throwaway redis-server's arguments: loopback, no persistence, its files in a temp folder. */
export function redisArgs(port: number, dirPrefix: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    mkdtempSync(join(tmpdir(), dirPrefix)),
  ];
}

/** Upstream batch arrivals per window of `windowMs`, from `from` to `to` (performance.now()). */
export function arrivalsPerWindow(arrivals: number[], from: number, to: number, windowMs: number): number[] {
  const out = new Array<number>(Math.max(0, Math.ceil((to - from) / windowMs))).fill(0);
  for (const t of arrivals) {
    if (t < from || t >= to) continue;
    const i = Math.floor((t - from) / windowMs);
    out[i] = (out[i] ?? 0) + 1;
  }
  return out;
}

/** Seeds users and conversations directly at the fake (not through the proxy). */
export async function seed(
  upstream: FakeUpstream,
  apps: Array<{ app: string; secret: string; conversation: string }>,
  users = 20,
): Promise<void> {
  for (const a of apps) {
    const put = async (path: string, body: unknown) => {
      const res = await fetch(`${upstream.url}/v1/${a.app}${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${a.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`seeding ${path}: ${res.status}`);
      await res.arrayBuffer();
    };
    for (let u = 0; u < users; u++) {
      await put(`/conversations/${a.conversation}-${u}`, { subject: 'chaos' });
      await put(`/users/w-${u}`, { name: `w ${u}` });
    }
  }
}

export const UNREACHABLE = 'redis unreachable';
export const REACHABLE = 'redis reachable again';

export interface Outage {
  replica: string;
  from: number;
  to: number;
}

/** Each replica's fallback episodes, from its `redis unreachable` / `redis reachable again` lines. */
export function fallbackOutages(replicas: Array<{ name: string; log: LogWatch }>): Outage[] {
  const out: Outage[] = [];
  for (const r of replicas) {
    let from: number | undefined;
    for (const line of r.log.lines) {
      if (line.text.includes(UNREACHABLE) && from === undefined) from = line.at;
      if (line.text.includes(REACHABLE) && from !== undefined) {
        out.push({ replica: r.name, from, to: line.at });
        from = undefined;
      }
    }
    if (from !== undefined) out.push({ replica: r.name, from, to: performance.now() });
  }
  return out;
}

/**
 * The designed bound on upstream 429s over these outages: a replica in fallback spends at most
 * `share` of the limit on its own, share x (rate x T + burst) calls the shared bucket never sees;
 * only those can be refused (fallback.ts; docs/metrics.md, "Is Redis healthy?").
 */
export function fallbackBound(
  spans: Outage[],
  share: number,
  limit: { ratePerSec: number; burst: number },
): number {
  return spans.reduce(
    (sum, o) => sum + Math.ceil(share * (limit.ratePerSec * ((o.to - o.from) / 1000) + limit.burst)),
    0,
  );
}
