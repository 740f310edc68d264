// Redis Cluster (SPEC §7 fleet mode): with REDIS_CLUSTER_NODES the proxy keeps its buckets in a real
// three-node cluster, each bucket on the node that owns its key's slot.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { useProxy } from '../harness/use.js';

const nodes: Array<{ port: number; child: ChildProcess }> = [];

async function startNode(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return { port, child };
}

/** Starts three cluster nodes and waits until every one agrees the cluster is ok. */
async function startCluster(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  for (let i = 0; i < 3; i++) nodes.push(await startNode(dir));
  const created = spawnSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (created.status !== 0) throw new Error(`cluster create failed: ${created.stdout}${created.stderr}`);
  // The cluster is usable once every node agrees its state is ok (nodes gossip the slot map).
  for (const n of nodes) {
    const client = new Redis(n.port, '127.0.0.1');
    const deadline = performance.now() + 15_000;
    while (!(await client.cluster('INFO')).includes('cluster_state:ok')) {
      if (performance.now() > deadline) throw new Error('cluster did not reach state ok');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    client.disconnect();
  }
}

// Registered before useProxy's, so it runs after the proxy has stopped.
afterAll(() => {
  for (const n of nodes) n.child.kill('SIGKILL');
});

const { proxy } = useProxy(
  async () => {
    await startCluster();
    return { REDIS_CLUSTER_NODES: `127.0.0.1:${nodes[0]?.port}`, LOG_LEVEL: 'warn' };
  },
  { upstream: { apps: { app1: 'sk_c', app2: 'sk_c2' } } },
);

describe('REDIS_CLUSTER_NODES', () => {
  it('keeps each app’s buckets in the cluster and serves without falling back', async () => {
    for (const [app, key] of [
      ['app1', 'sk_c'],
      ['app2', 'sk_c2'],
    ] as const) {
      const res = await fetch(`${proxy.url}/v1/${app}/users/c1`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(200);
    }
    const keys: string[] = [];
    for (const n of nodes) {
      const client = new Redis(n.port, '127.0.0.1');
      keys.push(...(await client.keys('batch-proxy:ratelimit:*')));
      client.disconnect();
    }
    expect(keys.some((k) => k.endsWith('|app1|batch}'))).toBe(true);
    expect(keys.some((k) => k.endsWith('|app2|batch}'))).toBe(true);
    expect(proxy.logs()).not.toMatch(/redis unreachable/);
  });
});
