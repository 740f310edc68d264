// The Redis limiter: GCRA buckets shared by every replica, one atomic script call per decision.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Cluster, type ClusterNode, Redis, type RedisOptions } from 'ioredis';
import type {
  BucketLimit,
  Decision,
  Grant,
  Limiter,
  PaceReport,
  ScopeNotice,
  Settled,
  Waiting,
} from './limiter.js';
import { type PaceAdjustment, paceArg } from './pace.js';
import { commandName, type ScriptName, scripts } from './scripts.js';

/**
 * Each script is registered as a command on the client: ioredis sends it by SHA (EVALSHA), sends the
 * source once per connection, and re-sends it when Redis answers NOSCRIPT (after a restart or
 * SCRIPT FLUSH).
 */
type ScriptClient = Record<string, (...args: string[]) => Promise<unknown>>;

export interface RedisLimiterOptions {
  /** The caller creates, and closes, the client: one Redis, or a Redis Cluster. */
  redis: Redis | Cluster;
  /** Prepended to every bucket key. Default `batch-proxy:ratelimit:`. */
  keyPrefix?: string;
  /** This replica's name in the buckets' turn queues. Default: host, pid and a random suffix. */
  replicaId?: string;
  /**
   * How long a reopened bucket's last token is kept for the replica whose turn it is before another
   * may take it (at most half an interval). Default 5 ms: more than a prompt replica needs to come
   * back (a timer and a round trip), little capacity lost when the one whose turn it is is gone.
   */
  turnGraceMs?: number;
}

export interface RedisLimiterConnectOptions {
  keyPrefix?: string;
  replicaId?: string;
  turnGraceMs?: number;
  /** Merged over the fail-fast defaults of `RedisLimiter.connect` (replies stay in the legacy mapping). */
  redisOptions?: Omit<RedisOptions, 'replyMapping'>;
  /**
   * Connection errors the client emits. A failed call rejects anyway (and `FallbackLimiter` reports
   * the outage), so by default they are dropped rather than printed by ioredis.
   */
  onError?: (error: Error) => void;
}

export class RedisLimiter implements Limiter {
  readonly #redis: Redis | Cluster;
  readonly #client: ScriptClient;
  readonly #prefix: string;
  readonly #channel: string;
  /** Where scope notices go (`share`): a channel of their own, so reopen notices parse as before. */
  readonly #sharedChannel: string;
  readonly #replica: string;
  readonly #graceMs: number;
  readonly #listeners: Array<(key: string, inMs: number) => void> = [];
  readonly #paceListeners: Array<(report: PaceReport) => void> = [];
  readonly #sharedListeners: Array<(notice: ScopeNotice) => void> = [];
  #subscriber: Redis | Cluster | undefined;
  #ownsClient = false;

  constructor(options: RedisLimiterOptions) {
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix ?? 'batch-proxy:ratelimit:';
    this.#channel = `${this.#prefix}reopen`;
    this.#sharedChannel = `${this.#prefix}shared`;
    this.#replica = options.replicaId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#graceMs = options.turnGraceMs ?? 5;
    for (const script of scripts.values()) {
      this.#redis.defineCommand(commandName(script.name), {
        lua: script.lua,
        numberOfKeys: script.numberOfKeys,
      });
    }
    this.#client = this.#redis as unknown as ScriptClient;
  }

  /**
   * A limiter with its own client, tuned so a dead Redis fails fast instead of queueing: no offline
   * queue (a call while disconnected rejects at once), one retry per request, a short connect timeout,
   * and reconnects at most a second apart so the shared state comes back soon after Redis does.
   * The client connects in the background; `close()` closes it.
   */
  static connect(url: string, options: RedisLimiterConnectOptions = {}): RedisLimiter {
    const redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 1000,
      retryStrategy: (times) => Math.min(50 * 2 ** times, 1000),
      ...options.redisOptions,
    });
    redis.on('error', options.onError ?? (() => {}));
    const limiter = new RedisLimiter({ redis, ...limiterOptions(options) });
    limiter.#ownsClient = true;
    return limiter;
  }

  /**
   * The same against a Redis Cluster: each bucket is one key and each script call touches only it,
   * so buckets spread over the cluster's slots.
   */
  static connectCluster(nodes: ClusterNode[], options: RedisLimiterConnectOptions = {}): RedisLimiter {
    const redis = new Cluster(nodes, {
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(50 * 2 ** times, 1000),
      redisOptions: { connectTimeout: 1000, maxRetriesPerRequest: 1, ...options.redisOptions },
    });
    redis.on('error', options.onError ?? (() => {}));
    const limiter = new RedisLimiter({ redis, ...limiterOptions(options) });
    limiter.#ownsClient = true;
    return limiter;
  }

  /** The ioredis client, e.g. to wait for `ready` at start-up. */
  get client(): Redis | Cluster {
    return this.#redis;
  }

  /** This replica's name in the turn queues. */
  get replicaId(): string {
    return this.#replica;
  }

  async acquire(key: string, limit: BucketLimit, leaseMs = 0, waiting?: Waiting): Promise<Decision> {
    const bucket = this.#key(key);
    // The turn grace is bounded by half an interval at the fastest rate the bucket may pace at.
    const fastest = limit.pace?.maxRatePerSec ?? limit.ratePerSec;
    const reply = await this.#run('acquire', [bucket, `${bucket}:turns`, `${bucket}:pace`], limit, [
      String(leaseMs),
      '',
      waiting ? this.#replica : '',
      waiting?.waitedMs === undefined ? '' : String(Math.max(0, waiting.waitedMs)),
      String(Math.min(this.#graceMs, 500 / fastest)),
      paceArg(limit.pace),
    ]);
    const [granted, remaining, ms, leased, rate, adjusted] = tuple(reply, 6);
    const paced = limit.pace === undefined ? {} : { ratePerSec: this.#reportPace(key, rate, adjusted) };
    if (granted !== 1) return { granted: false, remaining: 0, retryAfterMs: decimal(ms), ...paced };
    return {
      granted: true,
      remaining: integer(remaining),
      settleAfterMs: decimal(ms),
      grant: { leased: leased === 1 },
      ...paced,
    };
  }

  onPace(listener: (report: PaceReport) => void): void {
    this.#paceListeners.push(listener);
  }

  /** Tells the pace listeners what a script said; returns the rate. */
  #reportPace(key: string, rate: unknown, adjusted: unknown): number {
    const report: PaceReport = { key, ratePerSec: decimal(rate), adjusted: adjustment(adjusted) };
    for (const listener of this.#paceListeners) listener(report);
    return report.ratePerSec;
  }

  async settle(key: string, limit: BucketLimit, grant?: Grant, waiting?: Waiting): Promise<Settled> {
    const bucket = this.#key(key);
    const reply = await this.#run('settle', [bucket, `${bucket}:turns`, `${bucket}:pace`], limit, [
      '',
      grant?.leased ? '1' : '',
      this.#listeners.length > 0 ? this.#channel : '',
      waiting ? this.#replica : '',
      waiting?.waitedMs === undefined ? '' : String(Math.max(0, waiting.waitedMs)),
      paceArg(limit.pace),
    ]);
    return { reopenInMs: decimal(tuple(reply, 2)[1]) };
  }

  /**
   * Subscribes (on a second connection) to the reopen notices every replica's settle publishes. A
   * notice names the replica whose turn the reopened bucket is: the others hear of it a grace later.
   * The subscriber reconnects by itself; notices missed meanwhile only cost a poll.
   */
  onReopen(listener: (key: string, inMs: number) => void): void {
    this.#listeners.push(listener);
    if (this.#listeners.length === 1) this.#subscribe(this.#channel);
  }

  /**
   * Publishes a scope notice to the other replicas: one PUBLISH, not awaited. A notice lost (Redis
   * unreachable, a subscriber reconnecting) costs each other replica its own first 429 in that scope.
   */
  share(notice: ScopeNotice): void {
    const message: WireNotice = { r: this.#replica, a: notice.appId, g: notice.group };
    if (notice.pauseMs !== undefined) message.p = notice.pauseMs;
    if (notice.paceMs !== undefined) message.i = notice.paceMs;
    try {
      this.#redis.publish(this.#sharedChannel, JSON.stringify(message)).catch(() => {});
    } catch {
      // A client that has ended throws at once: the notice is lost, as above.
    }
  }

  /** Subscribes (on the second connection) to the scope notices the other replicas share. */
  onShared(listener: (notice: ScopeNotice) => void): void {
    this.#sharedListeners.push(listener);
    if (this.#sharedListeners.length === 1) this.#subscribe(this.#sharedChannel);
  }

  /** Subscribes the second connection, made on first use, to `channel`. */
  #subscribe(channel: string): void {
    let subscriber = this.#subscriber;
    if (!subscriber) {
      subscriber =
        this.#redis instanceof Cluster
          ? this.#redis.duplicate(undefined, { enableOfflineQueue: true })
          : this.#redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
      this.#subscriber = subscriber;
      subscriber.on('error', () => {
        // Reported through the command connection; the subscriber just reconnects.
      });
      subscriber.on('message', (from: string, message: string) => {
        if (from === this.#channel) this.#reopened(message);
        else if (from === this.#sharedChannel) this.#shared(message);
      });
    }
    subscriber.subscribe(channel).catch(() => {
      // Retried on reconnect by ioredis (auto-resubscribe).
    });
  }

  #reopened(message: string): void {
    // "<inMs> <replica whose turn, or nothing> <key>"
    const first = message.indexOf(' ');
    const second = message.indexOf(' ', first + 1);
    const inMs = Number(message.slice(0, first));
    const turn = message.slice(first + 1, second);
    const fullKey = message.slice(second + 1);
    const key = this.#unkey(fullKey);
    if (first < 0 || second < 0 || key === undefined || !Number.isFinite(inMs)) return;
    const later = turn === '' || turn === this.#replica ? 0 : this.#graceMs;
    for (const l of this.#listeners) l(key, inMs + later);
  }

  #shared(message: string): void {
    const notice = parseNotice(message, this.#replica);
    if (!notice) return;
    for (const listener of this.#sharedListeners) {
      try {
        listener(notice);
      } catch {
        // A listener's bug must not stop the others, nor surface inside the client's parser.
      }
    }
  }

  /** With a paced limit, the 429 is also a congestion event: the script lowers the rate first. */
  async pause(key: string, limit: BucketLimit, ms: number): Promise<void> {
    const reply = await this.#run('pause', this.#paced(key), limit, [String(ms), '', paceArg(limit.pace)]);
    if (limit.pace === undefined) return;
    const [, rate, adjusted] = tuple(reply, 3);
    this.#reportPace(key, rate, adjusted);
  }

  async charge(key: string, limit: BucketLimit, count: number): Promise<void> {
    await this.#run('charge', this.#paced(key), limit, [String(count), '', paceArg(limit.pace)]);
  }

  async peek(key: string, limit: BucketLimit): Promise<{ tokens: number; cooldownMs: number }> {
    const reply = await this.#run('peek', this.#paced(key), limit, ['', paceArg(limit.pace)]);
    const [tokens, cooldownMs] = tuple(reply, 2);
    return { tokens: integer(tokens), cooldownMs: decimal(cooldownMs) };
  }

  /** Resolves when Redis answers; rejects at once while the client is disconnected (`connect`). */
  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    if (!this.#ownsClient) return;
    if (this.#redis.status === 'ready') {
      const ended = new Promise<void>((resolve) => this.#redis.once('end', () => resolve()));
      try {
        await this.#redis.quit();
        await ended;
        return;
      } catch {
        // The connection died mid-quit: nothing left to flush.
      }
    }
    // Also stops a pending reconnect.
    this.#redis.disconnect();
  }

  /**
   * A bucket's Redis key, and its turn queue's: the bucket name in a hash tag, so a Cluster keeps the
   * two on one slot (a script may only touch keys of one slot).
   */
  #key(key: string): string {
    return `${this.#prefix}{${key}}`;
  }

  /** A bucket's key and its pace's (same hash slot). */
  #paced(key: string): string[] {
    const bucket = this.#key(key);
    return [bucket, `${bucket}:pace`];
  }

  #unkey(fullKey: string): string | undefined {
    if (!fullKey.startsWith(`${this.#prefix}{`) || !fullKey.endsWith('}')) return undefined;
    return fullKey.slice(this.#prefix.length + 1, -1);
  }

  /** One script call: its keys, the limit (every script's first two arguments), then its own. */
  #run(name: ScriptName, keys: string[], limit: BucketLimit, args: string[]): Promise<unknown> {
    // String(number) is the shortest exact decimal, so the script computes on the very same doubles.
    const command = this.#client[commandName(name)] as (...a: string[]) => Promise<unknown>;
    return command.call(this.#client, ...keys, String(limit.ratePerSec), String(limit.burst), ...args);
  }
}

/** A scope notice on the wire: short keys, the sending replica's id to skip its own. */
interface WireNotice {
  r: string;
  a: string;
  g: string;
  p?: number;
  i?: number;
}

/** A notice another replica shared, or undefined (this replica's own, or not a notice). */
function parseNotice(message: string, self: string): ScopeNotice | undefined {
  let wire: Partial<Record<keyof WireNotice, unknown>>;
  try {
    wire = JSON.parse(message) as typeof wire;
  } catch {
    return undefined;
  }
  if (typeof wire !== 'object' || wire === null) return undefined;
  const { r, a, g, p, i } = wire;
  if (typeof r !== 'string' || r === self || typeof a !== 'string') return undefined;
  if (typeof g !== 'string' || !/^[0-9a-f]{32}$/.test(g)) return undefined;
  const valid = (ms: unknown) =>
    ms === undefined || (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0);
  if (!valid(p) || !valid(i) || (p === undefined && i === undefined)) return undefined;
  return {
    appId: a,
    group: g,
    ...(p === undefined ? {} : { pauseMs: p as number }),
    ...(i === undefined ? {} : { paceMs: i as number }),
  };
}

function limiterOptions(options: RedisLimiterConnectOptions): Omit<RedisLimiterOptions, 'redis'> {
  const picked: { keyPrefix?: string; replicaId?: string; turnGraceMs?: number } = {};
  if (options.keyPrefix !== undefined) picked.keyPrefix = options.keyPrefix;
  if (options.replicaId !== undefined) picked.replicaId = options.replicaId;
  if (options.turnGraceMs !== undefined) picked.turnGraceMs = options.turnGraceMs;
  return picked;
}

function tuple(reply: unknown, length: number): unknown[] {
  if (!Array.isArray(reply) || reply.length !== length) {
    throw new Error(`limiter script: expected ${length} values, got ${JSON.stringify(reply)}`);
  }
  return reply;
}

function adjustment(value: unknown): PaceAdjustment | undefined {
  if (value === 1) return 'increase';
  if (value === -1) return 'decrease';
  if (value === 0) return undefined;
  throw new Error(`limiter script: expected -1, 0 or 1, got ${JSON.stringify(value)}`);
}

function integer(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new Error(`limiter script: expected an integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function decimal(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n))
    throw new Error(`limiter script: expected a decimal string, got ${JSON.stringify(value)}`);
  return n;
}
