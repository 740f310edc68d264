// The log lines around a SIGTERM: `draining` comes before `stopped`, `stopped` is the last
// line, all of it JSON on stdout — also while libuv's thread pool, where the asynchronous log writes
// wait their turn, is busy with something else. And the `starting` line names its pid once.

import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess } from '../harness/process.js';

const BUSY_POOL = fileURLToPath(new URL('./busy-pool.mjs', import.meta.url));

/** An upstream that never answers: a pass-through call to it keeps the drain busy until the grace ends. */
let upstream: Server;
let upstreamUrl: string;
let arrived: () => Promise<unknown>;
let dir: string;

beforeAll(async () => {
  upstream = createServer((req) => {
    req.resume();
    upstream.emit('held');
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  arrived = () => once(upstream, 'held');
  dir = mkdtempSync(join(tmpdir(), 'shutdown-log-'));
});

afterAll(() => {
  upstream.closeAllConnections();
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The `msg` of each stdout line, in order; throws on a line that is not JSON. */
function messages(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
}

describe('shutdown log', () => {
  it('writes draining, then stopped last, on every SIGTERM, even while the thread pool is busy', async () => {
    for (const round of [1, 2, 3]) {
      const fifo = join(dir, `pool-${round}`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const proxy = await startProxyProcess(
        {
          UPSTREAM_URL: upstreamUrl,
          LOG_LEVEL: 'info',
          // The drain waits 100 ms for the held call, then cuts it: `stopped` comes ~250 ms after
          // `draining`, several event-loop turns (and log writes) later.
          SHUTDOWN_GRACE_MS: '0',
          UV_THREADPOOL_SIZE: '1',
          BUSY_POOL_FIFO: fifo,
          // Past `stopped`, and well within the 1 s the exit waits for the log to be written.
          BUSY_POOL_MS: '700',
        },
        { nodeArgs: ['--import', BUSY_POOL], killAfterMs: 5_000 },
      );
      const held = arrived();
      const call = fetch(`${proxy.url}/v1/app1/users/u1`, {
        headers: { authorization: 'Bearer sk_x', 'x-batch-bypass': '1' },
      }).then(
        (res) => res.arrayBuffer(),
        () => undefined,
      );
      await held;
      const code = await proxy.stop('SIGTERM');
      await call;
      // 'exit' can come before the last bytes of the pipe are read.
      if (proxy.child.stdout?.readable) await once(proxy.child.stdout, 'close');
      const lines = messages(proxy.logs());
      expect({
        round,
        code,
        order: lines.filter((msg) => msg === 'draining' || msg === 'stopped'),
        last: lines.at(-1),
      }).toEqual({ round, code: 0, order: ['draining', 'stopped'], last: 'stopped' });
    }
  });

  it('names the pid once in the starting line', async () => {
    const proxy = await startProxyProcess({ UPSTREAM_URL: upstreamUrl, LOG_LEVEL: 'info' });
    try {
      // The raw text: JSON.parse keeps the last of two equal keys and hides the duplicate.
      const line = await proxy.waitForLine('"msg":"starting"');
      expect(line.match(/"pid":/g)).toHaveLength(1);
      expect(JSON.parse(line)).toMatchObject({ pid: proxy.child.pid });
    } finally {
      await proxy.stop();
    }
  });
});
