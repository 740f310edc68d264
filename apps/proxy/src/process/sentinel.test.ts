// NewestMasterConnector against real processes: redis-server masters and `redis-server --sentinel`
// sentinels. Two sentinels that disagree, deterministically: each monitors its own master and starts
// from its own configuration epoch (`sentinel config-epoch` in its file), and they share no instance,
// so neither ever hears the other — the older one is the sentinel that has not learnt a failover yet.
// A switch is made the way a sentinel learns one from a peer: a hello message with a newer epoch,
// published on the master it watches; the sentinel then switches and publishes `+switch-master`.

import { type RedisServer, startRedisServer } from '@batch-proxy/core/testing';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, publishHello, type Sentinel, startSentinel, stopSentinels } from './sentinel.fixture.js';
import { askAll, askSentinel, type HostPort, NewestMasterConnector, newest } from './sentinel.js';

const NAME = 'unitmaster';
const ACCESS = { timeoutMs: 1_000 };
const clients: Redis[] = [];

function client(sentinels: HostPort[], options: Omit<RedisOptions, 'replyMapping'> = {}): Redis {
  const redis = new Redis({
    sentinels,
    name: NAME,
    Connector: NewestMasterConnector,
    connectTimeout: 1_000,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 1_000),
    ...options,
  });
  redis.on('error', () => {});
  clients.push(redis);
  return redis;
}

function ready(redis: Redis): Promise<void> {
  return redis.status === 'ready'
    ? Promise.resolve()
    : new Promise((resolve) => redis.once('ready', resolve));
}

/** The port of the node a client is connected to. */
async function portOf(redis: Redis): Promise<number> {
  await ready(redis);
  return Number(((await redis.call('CONFIG', 'GET', 'port')) as string[])[1]);
}

/** The connections a sentinel has that are subscribed to something. */
async function subscribers(sentinel: HostPort): Promise<number> {
  const admin = new Redis({ host: sentinel.host, port: sentinel.port });
  try {
    const list = (await admin.call('CLIENT', 'LIST')) as string;
    return list.split('\n').filter((l) => /\bsub=[1-9]/.test(l)).length;
  } finally {
    admin.disconnect();
  }
}

const spares: RedisServer[] = [];

/** A master of a test's own, so the sentinels of the other tests never hear of its switch. */
async function spareMaster(): Promise<RedisServer> {
  const master = await startRedisServer();
  spares.push(master);
  return master;
}

let oldMaster: RedisServer;
let newMaster: RedisServer;
/** A sentinel that has learnt a failover (epoch 3, newMaster) and one that has not (epoch 0, oldMaster). */
let fresh: Sentinel;
let stale: Sentinel;

beforeAll(async () => {
  [oldMaster, newMaster] = await Promise.all([startRedisServer(), startRedisServer()]);
  [fresh, stale] = await Promise.all([startSentinel(NAME, newMaster, 3), startSentinel(NAME, oldMaster, 0)]);
}, 30_000);

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  stopSentinels();
  await Promise.all([oldMaster?.stop(), newMaster?.stop(), ...spares.map((m) => m.stop())]);
});

describe('asking the sentinels', () => {
  it("reports each sentinel's master and configuration epoch", async () => {
    await expect(askSentinel(stale, NAME, ACCESS)).resolves.toEqual({
      sentinel: stale,
      master: { host: '127.0.0.1', port: oldMaster.port },
      epoch: 0,
    });
    await expect(askSentinel(fresh, NAME, ACCESS)).resolves.toMatchObject({
      master: { port: newMaster.port },
      epoch: 3,
    });
  });

  it('takes the highest epoch, whichever sentinel is listed first', async () => {
    for (const order of [
      [stale, fresh],
      [fresh, stale],
    ]) {
      const { views, errors } = await askAll(order, NAME, ACCESS);
      expect(errors).toEqual([]);
      expect(newest(views)?.master.port).toBe(newMaster.port);
    }
    expect(newest([])).toBeUndefined();
  });

  it('counts a sentinel that is down or does not know the name as an error, not an answer', async () => {
    const closed = { host: '127.0.0.1', port: await freePort() };
    const { views, errors } = await askAll([closed, stale], NAME, ACCESS);
    expect(views.map((v) => v.master.port)).toEqual([oldMaster.port]);
    expect(errors).toHaveLength(1);
    await expect(askSentinel(fresh, 'nosuchmaster', ACCESS)).rejects.toThrow();
  });
});

describe('NewestMasterConnector', () => {
  it('stock ioredis takes the first answer: with the lagging sentinel listed first, the old master', async () => {
    // Why the connector exists (issue #34). If ioredis starts comparing epochs, this fails: then its
    // own connector may do.
    const stock = new Redis({ sentinels: [stale, fresh], name: NAME, lazyConnect: true });
    stock.on('error', () => {});
    clients.push(stock);
    await stock.connect();
    expect(await portOf(stock)).toBe(oldMaster.port);
  });

  it('connects to the master of the newest configuration, whichever sentinel is listed first', async () => {
    expect(await portOf(client([stale, fresh]))).toBe(newMaster.port);
    expect(await portOf(client([fresh, stale]))).toBe(newMaster.port);
  });

  it('keeps asking, and says so, while no sentinel answers; connects once one does', async () => {
    const port = await freePort();
    const redis = client([{ host: '127.0.0.1', port }], { sentinelRetryStrategy: () => 50 });
    const error = await new Promise<Error>((resolve) => redis.once('error', resolve));
    expect(error.message).toMatch(
      new RegExp(
        `^no sentinel named the master ${NAME} \\(sentinel 127.0.0.1:${port}: .*ECONNREFUSED.*\\); asking again$`,
      ),
    );
    expect(redis.status).toBe('connecting');
    await startSentinel(NAME, newMaster, 3, port);
    expect(await portOf(redis)).toBe(newMaster.port);
  });

  it('refuses a node that does not report itself a master', () => {
    const connector = new NewestMasterConnector({ sentinels: [stale], name: NAME });
    expect(connector.check({ role: 'master' })).toBe(true);
    expect(connector.check({ role: 'slave' })).toBe(false);
    expect(() => new NewestMasterConnector({ sentinels: [], name: NAME })).toThrow();
    expect(() => new NewestMasterConnector({ sentinels: [stale], name: NAME, role: 'slave' })).toThrow();
  });

  it('leaves the old master on +switch-master, for the one the switch names', async () => {
    const master = await spareMaster();
    const own = await startSentinel(NAME, master, 0);
    const redis = client([own]);
    expect(await portOf(redis)).toBe(master.port);
    const readyAgain = new Promise<number>((resolve) =>
      redis.once('ready', () => resolve(performance.now())),
    );
    const switched = own.line('+switch-master');
    await publishHello(NAME, master, newMaster, 7);
    await switched;
    const at = performance.now();
    expect((await readyAgain) - at).toBeLessThan(2_000);
    expect(await portOf(redis)).toBe(newMaster.port);
  });

  it('stays put on a +switch-master naming the master it is already on', async () => {
    const master = await spareMaster();
    const own = await startSentinel(NAME, master, 0);
    const redis = client([own, fresh]);
    expect(await portOf(redis)).toBe(newMaster.port);
    let closed = 0;
    redis.on('close', () => closed++);
    const switched = own.line('+switch-master');
    await publishHello(NAME, master, newMaster, 9);
    await switched;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(closed).toBe(0);
    expect(await portOf(redis)).toBe(newMaster.port);
  });

  it('closes its subscriptions with the connection, QUIT included', async () => {
    const own = await startSentinel(NAME, await spareMaster(), 0);
    const redis = client([own]);
    await ready(redis);
    expect(await subscribers(own)).toBe(1);
    await redis.quit();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await subscribers(own)).toBe(0);
  });
});
