// Issue #34, fault 3: Sentinel failover under load. A Redis master, a replica of it and three
// sentinels (redis-server --sentinel, quorum 2); two proxy replicas find the master through
// REDIS_SENTINELS. In the middle of a saturating load a sentinel is told `SENTINEL FAILOVER`: the
// replica is promoted, the old master demoted. Required: no call lost (every caller answered), upstream
// 429s within the fallback share's bound (fleet-kit.ts, fallbackBound) summed over the replicas'
// logged outages, the buckets live on the new master afterwards, and the fleet's last write on the
// old master within 2 s of +switch-master (no split brain past that).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { freePort } from '../harness/ports.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import {
  countBy,
  fallbackBound,
  fallbackOutages,
  fleetLoad,
  LogWatch,
  REACHABLE,
  redisArgs,
  seed,
  UNREACHABLE,
} from './fleet-kit.js';

const APP = { app: 'app1', secret: 'sk_sent_app1', conversation: 'conv-sent' };
const LIMIT = { ratePerSec: 10, burst: 4 };
const SHARE = 0.5;
const MAX_WAIT_MS = 5_000;
const NAME = 'chaosmaster';

let upstream: FakeUpstream;
/** The master at start (a plain redis-server in a temp dir: demoted, it writes an RDB on its sync). */
let master: { port: number; url: string };
let replicaPort: number;
const children: ChildProcess[] = [];
const sentinels: Array<{ port: number; out: () => string; child: ChildProcess }> = [];
const proxies: Array<{ name: string; proxy: ProxyProcess; log: LogWatch }> = [];
/** How long after +switch-master the fleet last wrote its bucket on the old master (0: never). */
let leftOldMasterMs: number | undefined;

/** Resolves with when a sentinel's output (from `from` on) first holds `text`. */
function sentinelLine(
  s: { out: () => string; child: ChildProcess },
  text: string,
  from: number,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!s.out().slice(from).includes(text)) return false;
      clearTimeout(timer);
      s.child.stdout?.off('data', check);
      resolve(performance.now());
      return true;
    };
    const timer = setTimeout(() => reject(new Error(`no ${text} within ${timeoutMs} ms`)), timeoutMs);
    if (!check()) s.child.stdout?.on('data', check);
  });
}

/**
 * Watches a bucket on a Redis node: every `everyMs` one MULTI reads the node's role and the bucket,
 * and each change of the bucket seen while the node is a master is a write of the fleet there (under
 * a saturating load every grant rewrites it). Ends at `stop()`, or when the node stops being a master
 * or answering (its demotion closes client connections).
 */
function watchWrites(url: string, key: string, everyMs = 20): { stop: () => Promise<number[]> } {
  const node = new Redis(url);
  node.on('error', () => {});
  const writes: number[] = [];
  let last: string | null | undefined;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const replies = await node
        .multi()
        .role()
        .get(key)
        .exec()
        .catch(() => null);
      const role = (replies?.[0]?.[1] as unknown[] | undefined)?.[0];
      if (role !== 'master') return;
      const value = replies?.[1]?.[1] as string | null;
      // A bucket left alone expires (null): not a write.
      if (last !== undefined && value !== null && value !== last) writes.push(performance.now());
      last = value;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      node.disconnect();
      return writes;
    },
  };
}

/** Spawns a redis-server and resolves once its output contains `ready`. */
function spawnRedis(args: string[], ready: string): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server ${args.join(' ')} not ready:\n${out}`)),
      10_000,
    );
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve({ child, out: () => out });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${out}`)));
  });
}

beforeAll(async () => {
  upstream = await startFakeUpstream({
    apps: { [APP.app]: APP.secret },
    limits: { batch: LIMIT },
    latencyMs: () => 5 + Math.random() * 10,
  });
  await seed(upstream, [APP]);
  const masterPort = await freePort();
  await spawnRedis(redisArgs(masterPort, 'chaos-master-'), 'Ready to accept connections');
  master = { port: masterPort, url: `redis://127.0.0.1:${masterPort}` };
  replicaPort = await freePort();
  const replica = await spawnRedis(
    [
      // A full sync writes an RDB on the replica: redisArgs keeps it out of the working tree.
      ...redisArgs(replicaPort, 'chaos-replica-'),
      '--replicaof',
      '127.0.0.1',
      String(master.port),
    ],
    'MASTER <-> REPLICA sync: Finished with success',
  );
  void replica;
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'chaos-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 10000`,
        `sentinel parallel-syncs ${NAME} 1`,
        '',
      ].join('\n'),
    );
    const s = await spawnRedis([conf, '--sentinel'], `+monitor master ${NAME}`);
    sentinels.push({ port, ...s });
  }
  // Each sentinel must know the replica (and the other sentinels) before a failover can elect it.
  for (const s of sentinels) {
    const client = new Redis({ port: s.port, host: '127.0.0.1', lazyConnect: true });
    await client.connect();
    for (let tries = 0; tries < 200; tries++) {
      const replicas = (await client.call('SENTINEL', 'REPLICAS', NAME)) as unknown[];
      const others = (await client.call('SENTINEL', 'SENTINELS', NAME)) as unknown[];
      if (replicas.length >= 1 && others.length >= 2) break;
      // Sentinels discover each other through hello messages every 2 s: nothing to wait on but them.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    client.disconnect();
  }
  const env = {
    UPSTREAM_URL: upstream.url,
    REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    REDIS_SENTINEL_NAME: NAME,
    REDIS_FALLBACK_SHARE: String(SHARE),
    LOG_LEVEL: 'warn',
    BATCH_RATE_PER_SEC: String(LIMIT.ratePerSec),
    BATCH_BURST: String(LIMIT.burst),
    UPSTREAM_TIMEOUT_MS: '1000',
    MAX_WAIT_MS: String(MAX_WAIT_MS),
  };
  for (const name of ['A', 'B']) {
    const proxy = await startProxyProcess(env);
    proxies.push({ name, proxy, log: new LogWatch(proxy) });
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.proxy.stop()));
  for (const c of children) c.kill('SIGKILL');
  await upstream?.close();
});

describe('Sentinel failover under load', () => {
  it('SENTINEL FAILOVER mid-load: no call lost, 429s within the fallback bound, buckets on the new master', async () => {
    const load = fleetLoad(proxies, APP, MAX_WAIT_MS, 'sent');
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3_000));

    // The sentinel listed last in REDIS_SENTINELS runs the failover: the ones a client asks first
    // learn the switch from its hello messages (here within ~0.15 s; later if one lags) — the window
    // in which a client that trusts the first answer goes back to the old master.
    const leader = sentinels.at(-1);
    if (!leader) throw new Error('no sentinel');
    // Sentinel demotes the old master only when it next looks at it (+convert-to-slave, ~10 s on).
    // Until then the old master still takes writes: whoever keeps using it splits the brain.
    const oldMaster = new Redis(master.url);
    // Its demotion closes client connections: expected, not an error of the test.
    oldMaster.on('error', () => {});
    const bucketKey = (await oldMaster.keys('batch-proxy:ratelimit:*')).find((k) =>
      k.endsWith('|app1|batch}'),
    );
    if (!bucketKey) throw new Error('the load wrote no batch bucket on the master');
    const oldWrites = watchWrites(master.url, bucketKey);
    const switchFrom = leader.out().length;
    const convertFrom = sentinels.map((x) => x.out().length);
    const switched = sentinelLine(leader, '+switch-master', switchFrom, 15_000);
    // When each sentinel took the new configuration (the others from the leader's hello messages).
    const switchedEach = sentinels.map((x, i) =>
      sentinelLine(x, '+switch-master', convertFrom[i] ?? 0, 15_000).catch(() => Number.NaN),
    );
    const marks = proxies.map((p) => p.log.lines.length);
    const admin = new Redis({ port: leader.port, host: '127.0.0.1' });
    const failoverAt = performance.now();
    expect(await admin.call('SENTINEL', 'FAILOVER', NAME)).toBe('OK');
    const switchedAt = await switched;
    const addr = (await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME)) as string[];
    admin.disconnect();
    const newMaster = new Redis({ port: replicaPort, host: '127.0.0.1' });
    newMaster.on('error', () => {});
    const read = async (r: Redis) => r.get(bucketKey);
    const newAtSwitch = await read(newMaster);
    // Any of the three may be the one that converts it.
    const demoted = await Promise.any(
      sentinels.map((x, i) => sentinelLine(x, '+convert-to-slave', convertFrom[i] ?? 0, 25_000)),
    );
    const writesOnOld = await oldWrites.stop();
    const writesAfterSwitch = writesOnOld.filter((t) => t > switchedAt);
    const lastOldWrite = writesAfterSwitch.at(-1);
    leftOldMasterMs = lastOldWrite === undefined ? 0 : lastOldWrite - switchedAt;
    // Every replica that went to its fallback during the failover is shared again (on the new master).
    const backAt = await Promise.all(
      proxies.map(async (p, i) =>
        p.log.lines.slice(marks[i]).some((l) => l.text.includes(UNREACHABLE))
          ? (await p.log.next(REACHABLE, marks[i] ?? 0, 10_000)).at
          : undefined,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const newAtEnd = await read(newMaster);
    oldMaster.disconnect();
    const records = await load.stop();
    const end = performance.now();

    const spans = fallbackOutages(proxies);
    const allowed = fallbackBound(spans, SHARE, LIMIT);
    const lost = records.filter((r) => r.status === 0);
    const rejected = upstream.stats.rejected429.batch;
    const role = ((await newMaster.call('ROLE')) as unknown[])[0];
    newMaster.disconnect();
    const oldClient = new Redis(master.url);
    const oldRole = ((await oldClient.call('ROLE')) as unknown[])[0];
    oldClient.disconnect();
    // A replica that never went to its fallback was shared throughout.
    const followedAt = Math.max(...backAt.map((t) => t ?? switchedAt));
    const sentinelsSwitchedAt = await Promise.all(switchedEach);
    const answered = records.filter((r) => r.doneAt > switchedAt && r.status === 200).length;
    const ms = (t: number) => Math.round(t - t0);
    console.log(
      [
        `sentinel failover: ${records.length} calls in ${((end - t0) / 1000).toFixed(1)} s, statuses ` +
          `${JSON.stringify(countBy(records, (r) => `${r.status}${r.code ? ` ${r.code}` : ''}`))}`,
        `SENTINEL FAILOVER at ${ms(failoverAt)} ms, +switch-master after ${Math.round(switchedAt - failoverAt)} ms ` +
          `(master now ${addr.join(':')}, role ${String(role)}; the old one ${String(oldRole)}); ${answered} calls answered 200 after the switch; ` +
          `sentinels switched at ${sentinelsSwitchedAt.map((t) => `${Math.round(t - switchedAt)}`).join(', ')} ms (the leader last listed); ` +
          `old master demoted (+convert-to-slave) ${Math.round(demoted - switchedAt)} ms after the switch; ` +
          `the fleet's writes on it: ${writesOnOld.length - writesAfterSwitch.length} seen in the ${Math.round(switchedAt - failoverAt)} ms before the switch, ` +
          `${writesAfterSwitch.length} after, the last ${Math.round(leftOldMasterMs)} ms after it; ` +
          `every replica shared again ${Math.round(followedAt - switchedAt)} ms after the switch ` +
          `(new master's bucket ${newAtSwitch === newAtEnd ? 'unchanged' : 'written'} by the end)`,
        `outages: ${spans.map((o) => `${o.replica} ${ms(o.from)}–${ms(o.to)} ms`).join(', ') || 'none'}`,
        `upstream 429s ${rejected} vs designed bound ${allowed}; lost ${lost.length} ${JSON.stringify(countBy(lost, (r) => r.cause))}; ` +
          `longest hold ${Math.round(Math.max(...records.map((r) => r.doneAt - r.sentAt)))} ms`,
        ...leader
          .out()
          .slice(switchFrom)
          .split('\n')
          .filter((l) => l.includes('# +') || l.includes('* +'))
          .map((l) => `sentinel: ${l.slice(0, 160)}`),
        ...proxies.flatMap((p) =>
          p.log.lines
            .filter((l) => /redis/i.test(l.text))
            .slice(0, 6)
            .map((l) => `${p.name} ${ms(l.at)} ms: ${l.text.slice(0, 200)}`),
        ),
      ].join('\n'),
    );

    expect(addr).toEqual(['127.0.0.1', String(replicaPort)]);
    expect(role).toBe('master');
    expect(lost).toEqual([]);
    expect(rejected).toBeLessThanOrEqual(allowed);
    expect(oldRole).toBe('slave');
    // The fleet went on sharing its buckets on the promoted master (written there after the switch).
    expect(bucketKey).toBeDefined();
    expect(newAtEnd).not.toBeNull();
    expect(newAtEnd).not.toBe(newAtSwitch);
    expect(answered).toBeGreaterThan(0);
    // The watch on the old master saw the fleet write there before the switch: its silence after
    // the switch means something.
    expect(writesOnOld.length - writesAfterSwitch.length).toBeGreaterThan(5);
    expect(records.filter((r) => r.status === 200).length).toBeGreaterThan(records.length * 0.9);
  }, 90_000);

  // Found by this test: ioredis in Sentinel mode asks the sentinels for the master only when its
  // connection drops, so without a failover detector the fleet kept its buckets on the demoted master
  // until sentinel converted it (~10 s) — a split brain with any client that did follow. ioredis' own
  // `failoverDetector` drops the connection on +switch-master, but then connects to the first answer
  // of the sentinels it asks one by one, and that one may not have learnt the switch yet
  // (process/sentinel.test.ts makes it certain). The proxy now asks every sentinel and takes the
  // newest configuration epoch (process/sentinel.ts). Measured here by the fleet's writes on the old
  // master (watchWrites). The ~1 s / ~10 s this test printed before were something else: when each
  // replica left its fallback, or — when a replica's fallback began before the test looked — the
  // demotion itself.
  it('leaves the old master within 2 s of +switch-master', () => {
    if (leftOldMasterMs === undefined) throw new Error('the failover test did not run');
    expect(leftOldMasterMs).toBeLessThanOrEqual(2_000);
  });
});
