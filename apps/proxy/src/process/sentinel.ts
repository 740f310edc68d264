// Finds the Redis master through Sentinel the way the sentinels themselves settle it: by the newest
// configuration epoch, not by whichever sentinel answers first (issue #34).
//
// ioredis' own Sentinel connector asks the sentinels one after the other and connects to the first
// address one of them names; its `failoverDetector` drops the connection on `+switch-master` and asks
// again the same way. Right after a failover the sentinel asked first may not have learnt the switch
// yet (sentinels learn it from each other's hello messages): it still names the old master, which
// still answers as a master until sentinel converts it (~10 s on), so that client writes its buckets
// on the old master while the others write on the new one — a split brain. ioredis checks the role
// the node reports (INFO), which the old master passes until then, and never compares epochs.
//
// NewestMasterConnector, given to ioredis as its `Connector` option (a public option; the class
// builds on ioredis' exported AbstractConnector), instead:
// - subscribes to `+switch-master` on every configured sentinel, and asks every one of them, in
//   parallel (the round bounded by the connect timeout), each once its subscription is up, for the
//   master's address and the configuration epoch it belongs to; it connects to the address of the
//   highest epoch: a sentinel names a newer configuration only after a failover a majority of the
//   sentinels elected, so a lagging sentinel can never win;
// - drops the connection on a `+switch-master` for this master that names another address than the
//   one it is connected to: ioredis reconnects (its `retryStrategy`) and `connect` asks again. A
//   switch heard while asking makes it ask again, and one published before the subscriptions were up
//   is already in the sentinels' answers, so none is missed between the two;
// - refuses a node that does not report itself a master once connected (ioredis' ready check).
// Only at connect time: nothing on the path of a command. The subscriptions live as long as the
// connection they guard (ioredis' own detector outlives a QUIT).

import { createConnection, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls, type TLSSocket } from 'node:tls';
import { AbstractConnector, Redis, type RedisOptions } from 'ioredis';

export interface HostPort {
  host: string;
  port: number;
}

/** What one sentinel says of a master: where it is, and the configuration epoch that put it there. */
export interface MasterView {
  sentinel: HostPort;
  master: HostPort;
  /** Raised by every failover; of two views, the higher epoch is the newer configuration. */
  epoch: number;
}

/** How to reach the sentinels: each question (connect and answer) bounded by `timeoutMs`. */
export interface SentinelAccess {
  timeoutMs: number;
  username?: string | undefined;
  password?: string | undefined;
  tls?: ConnectionOptions | undefined;
}

/** ioredis' message when a connection is closed on purpose (its CONNECTION_CLOSED_ERROR_MSG). */
const CONNECTION_CLOSED = 'Connection is closed.';
const SWITCH_CHANNEL = '+switch-master';

const show = (a: HostPort) => `${a.host}:${a.port}`;
const same = (a: HostPort, b: HostPort | undefined) =>
  b !== undefined && a.host === b.host && a.port === b.port;

function sentinelClient(
  sentinel: HostPort,
  access: SentinelAccess,
  options: Omit<RedisOptions, 'replyMapping'> = {},
): Redis {
  const client = new Redis({
    host: sentinel.host,
    port: sentinel.port,
    ...(access.username === undefined ? {} : { username: access.username }),
    ...(access.password === undefined ? {} : { password: access.password }),
    ...(access.tls === undefined ? {} : { tls: access.tls }),
    lazyConnect: true,
    enableReadyCheck: false,
    connectTimeout: access.timeoutMs,
    retryStrategy: () => null,
    ...options,
  });
  // Each caller sees its own failures through the promises it awaits.
  client.on('error', () => {});
  return client;
}

/** A field of a SENTINEL MASTER reply (a flat [name, value, …] list, or a map). */
function field(reply: unknown, name: string): unknown {
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return reply[i + 1];
    return undefined;
  }
  return reply !== null && typeof reply === 'object' ? (reply as Record<string, unknown>)[name] : undefined;
}

function epochOf(reply: unknown): number {
  const epoch = Number(field(reply, 'config-epoch'));
  if (!Number.isSafeInteger(epoch)) throw new Error('it gave no config-epoch');
  return epoch;
}

/**
 * Asks one sentinel where the master `name` is and at which configuration epoch. The address comes
 * from GET-MASTER-ADDR-BY-NAME (which, on the sentinel running a failover, already names the promoted
 * replica once its new epoch is set) between two SENTINEL MASTER (the epoch), all in one pipeline:
 * if the epoch moved in between, the answer is refused rather than paired wrongly.
 */
export async function askSentinel(
  sentinel: HostPort,
  name: string,
  access: SentinelAccess,
): Promise<MasterView> {
  const client = sentinelClient(sentinel, access, {
    commandTimeout: access.timeoutMs,
    maxRetriesPerRequest: 0,
  });
  // A failed connect rejects with "Connection is closed."; the cause (ECONNREFUSED, ETIMEDOUT…) is
  // the first error the client emitted.
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect().catch((error: unknown) => {
      throw cause ?? error;
    });
    const replies = await client
      .pipeline()
      .call('SENTINEL', 'MASTER', name)
      .call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)
      .call('SENTINEL', 'MASTER', name)
      .exec();
    const [before, addr, after] = (replies ?? []).map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
    const epoch = epochOf(before);
    if (epochOf(after) !== epoch) throw new Error('its configuration changed while asked');
    if (!Array.isArray(addr) || addr.length < 2) throw new Error(`it does not know the master ${name}`);
    return { sentinel, master: { host: String(addr[0]), port: Number(addr[1]) }, epoch };
  } catch (error) {
    throw new Error(`sentinel ${show(sentinel)}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    client.disconnect();
  }
}

/** The view of the newest configuration (the highest epoch; the first listed of equals). */
export function newest(views: readonly MasterView[]): MasterView | undefined {
  let best: MasterView | undefined;
  for (const view of views) if (best === undefined || view.epoch > best.epoch) best = view;
  return best;
}

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  const settled = promise.then(
    () => {},
    () => {},
  );
  return Promise.race([settled, bound]).finally(() => clearTimeout(timer));
}

/**
 * Asks every sentinel at once; resolves when each has answered or failed, within `timeoutMs` in all.
 * Sentinel `i` is asked once `before(i)` has settled (or the time is up): NewestMasterConnector waits
 * there for its `+switch-master` subscription on that sentinel, so a switch that sentinel publishes
 * is either in its answer or heard.
 */
export async function askAll(
  sentinels: readonly HostPort[],
  name: string,
  access: SentinelAccess,
  before: (index: number) => Promise<unknown> = () => Promise.resolve(),
): Promise<{ views: MasterView[]; errors: Error[] }> {
  const deadline = performance.now() + access.timeoutMs;
  const settled = await Promise.allSettled(
    sentinels.map(async (sentinel, i) => {
      await within(before(i), access.timeoutMs);
      const left = Math.floor(deadline - performance.now());
      if (left < 1) throw new Error(`sentinel ${show(sentinel)}: no answer within ${access.timeoutMs} ms`);
      return askSentinel(sentinel, name, { ...access, timeoutMs: left });
    }),
  );
  const views: MasterView[] = [];
  const errors: Error[] = [];
  for (const result of settled) {
    if (result.status === 'fulfilled') views.push(result.value);
    else errors.push(result.reason instanceof Error ? result.reason : new Error(String(result.reason)));
  }
  return { views, errors };
}

/**
 * Subscriptions to `+switch-master` on every sentinel, for one master name. Each reports the new
 * address a switch names. `subscribed[i]` resolves when sentinel `i` confirmed, or its connection
 * failed (a sentinel down keeps being tried, once a second, until `close`).
 */
export class SwitchWatch {
  readonly subscribed: ReadonlyArray<Promise<void>>;
  readonly #clients: Redis[];

  constructor(
    sentinels: readonly HostPort[],
    name: string,
    access: SentinelAccess,
    onSwitch: (to: HostPort, from: HostPort) => void,
  ) {
    this.#clients = sentinels.map((s) =>
      sentinelClient(s, access, { retryStrategy: () => 1_000, maxRetriesPerRequest: null }),
    );
    for (const client of this.#clients) {
      client.on('message', (channel: string, message: string) => {
        // "<master name> <old ip> <old port> <new ip> <new port>"
        const [master, oldHost, oldPort, newHost, newPort] = message.split(' ');
        if (channel !== SWITCH_CHANNEL || master !== name || newHost === undefined) return;
        onSwitch({ host: newHost, port: Number(newPort) }, { host: oldHost ?? '', port: Number(oldPort) });
      });
    }
    this.subscribed = this.#clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          client.subscribe(SWITCH_CHANNEL).then(
            () => resolve(),
            () => resolve(),
          );
          client.once('error', () => resolve());
        }),
    );
  }

  close(): void {
    for (const client of this.#clients) client.disconnect();
  }
}

type Stream = Socket | TLSSocket;

/** Ends a stream the way ioredis' AbstractConnector does: gracefully, destroyed if it lingers. */
function endStream(stream: Stream, timeoutMs: number): void {
  const timer = setTimeout(() => stream.destroy(), timeoutMs);
  stream.once('close', () => clearTimeout(timer));
  stream.end();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An ioredis connector (the `Connector` option) for a master found through Sentinel by the newest
 * configuration epoch. It reads the usual Sentinel options of the client: `sentinels`, `name`,
 * `sentinelUsername`/`sentinelPassword`/`sentinelTLS`, `sentinelRetryStrategy` (between rounds in
 * which no sentinel named the master), `connectTimeout` (bounds each sentinel's answer, as does
 * `sentinelCommandTimeout` if set, and a round in all), `tls` with `enableTLSForSentinelMode`,
 * `disconnectTimeout`. It asks the configured sentinels only (no `updateSentinels`), maps no address
 * (no `natMap`), and finds masters only (`role` `master`). `duplicate()` copies it with the other
 * options.
 */
export class NewestMasterConnector extends AbstractConnector {
  readonly #sentinels: HostPort[];
  readonly #name: string;
  readonly #access: SentinelAccess;
  readonly #tls: ConnectionOptions | undefined;
  readonly #retry: RedisOptions['sentinelRetryStrategy'];
  readonly #disconnectMs: number;
  /** Counts the switches heard: one during the questions makes `connect` ask again. */
  #switches = 0;
  #watch: SwitchWatch | undefined;

  constructor(options: unknown) {
    const o = options as RedisOptions;
    const disconnectMs = o.disconnectTimeout ?? 2_000;
    super(disconnectMs);
    this.#disconnectMs = disconnectMs;
    if (!o.sentinels?.length) throw new Error('Requires at least one sentinel to connect to.');
    if (!o.name) throw new Error('Requires the name of master.');
    if (o.role === 'slave') throw new Error('NewestMasterConnector finds masters only');
    this.#sentinels = o.sentinels.map((s) => ({ host: s.host ?? 'localhost', port: s.port ?? 26379 }));
    this.#name = o.name;
    this.#access = {
      timeoutMs: o.sentinelCommandTimeout ?? o.connectTimeout ?? 10_000,
      username: o.sentinelUsername,
      password: o.sentinelPassword,
      tls: o.sentinelTLS,
    };
    this.#tls = o.enableTLSForSentinelMode ? o.tls : undefined;
    this.#retry = o.sentinelRetryStrategy;
  }

  /** ioredis' ready check: only a node that reports itself a master is kept. */
  override check(info: { role?: string }): boolean {
    return info.role === undefined || info.role === 'master';
  }

  override disconnect(): void {
    super.disconnect();
    this.#closeWatch();
  }

  async connect(emit: (type: string, error: Error) => void): Promise<Stream> {
    this.connecting = true;
    this.#closeWatch();
    // The connection this attempt opens, once it has one: the switches heard are about it.
    let current: { stream: Stream; master: HostPort } | undefined;
    const watch = new SwitchWatch(this.#sentinels, this.#name, this.#access, (to) => {
      this.#switches++;
      if (current === undefined || current.stream.destroyed || same(to, current.master)) return;
      // On the old master: leave it. ioredis reconnects, and `connect` asks the sentinels again.
      endStream(current.stream, this.#disconnectMs);
    });
    this.#watch = watch;
    for (let round = 1; ; ) {
      if (!this.connecting) throw new Error(CONNECTION_CLOSED);
      const heard = this.#switches;
      const { views, errors } = await askAll(this.#sentinels, this.#name, this.#access, (i) =>
        Promise.resolve(watch.subscribed[i]),
      );
      if (!this.connecting) throw new Error(CONNECTION_CLOSED);
      // A switch while asking: an answer may predate it.
      if (heard !== this.#switches) continue;
      const view = newest(views);
      if (view !== undefined) {
        const stream = this.#open(view.master);
        current = { stream, master: view.master };
        stream.once('close', () => {
          if (this.#watch === watch) this.#closeWatch();
        });
        return stream;
      }
      const delay = this.#retry?.(round++);
      const message =
        `no sentinel named the master ${this.#name}` +
        (errors.length ? ` (${errors.map((e) => e.message).join('; ')})` : '');
      if (typeof delay !== 'number') throw new Error(`${message}, and sentinelRetryStrategy gives up`);
      // The same words every round (the delay left out): the proxy logs each new error once.
      emit('error', new Error(`${message}; asking again`));
      await sleep(delay);
    }
  }

  #open(master: HostPort): Stream {
    const stream = this.#tls ? connectTls({ ...master, ...this.#tls }) : createConnection(master);
    stream.once('error', (error) => {
      this.firstError = error;
    });
    this.stream = stream;
    return stream;
  }

  #closeWatch(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }
}
