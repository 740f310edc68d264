// SPEC §8 SIGTERM row and §8c: a signal at any stage of start-up or drain ends the process cleanly
// (exit 0, its last log lines written), and a drain answers every call it accepted — pass-through
// and the client's own batch call included, not only what the engine queued.

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { startProxyProcess } from '../harness/process.js';

/** An upstream that holds every call until the test releases it, and says when one arrived. */
interface HoldUpstream {
  url: string;
  arrived(count: number): Promise<void>;
  release(): void;
  server: Server;
}

async function startHoldUpstream(): Promise<HoldUpstream> {
  const held: ServerResponse[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let released = false;
  const answer = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"held":true}');
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (released) return answer(res);
    held.push(res);
    for (const w of waiters.filter((w) => held.length >= w.count)) w.resolve();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    arrived: (count) =>
      held.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve })),
    release: () => {
      released = true;
      for (const res of held.splice(0)) answer(res);
    },
  };
}

let hold: HoldUpstream;
beforeAll(async () => {
  hold = await startHoldUpstream();
});
afterAll(() => {
  hold.server.closeAllConnections();
  hold.server.close();
});

describe('drain', () => {
  it('answers admitted pass-through and client-batch calls before exit, even across a second signal', async () => {
    const proxy = await startProxyProcess({
      UPSTREAM_URL: hold.url,
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_MS: '1000',
    });
    const auth = { authorization: 'Bearer sk_x' };
    const calls = [
      fetch(`${proxy.url}/v1/app1/users/u1`, { headers: { ...auth, 'x-batch-bypass': '1' } }),
      fetch(`${proxy.url}/v1/app1/batch`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '[[0,"GET","/users/u1",{}]]',
      }),
    ];
    await hold.arrived(2);
    const exit = proxy.stop('SIGTERM');
    await proxy.waitForLine('"msg":"draining"');
    proxy.child.kill('SIGINT'); // a second signal does not cut the drain short
    // The drain must still be waiting for the two calls: give a drain that would not wait the time
    // to cut them (with a 1 s grace it closes connections after 100 ms), then answer them.
    await new Promise((resolve) => setTimeout(resolve, 300));
    hold.release();
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ held: true });
    }
    expect(await exit).toBe(0);
    expect(proxy.logs()).toContain('"msg":"stopped"');
  });
});

describe('signals during start-up', () => {
  it('SIGTERM while waiting for Redis: exits 0 at once, saying so', async () => {
    // A Redis that accepts connections and never answers: start-up waits for it.
    const redisPort = await freePort();
    const mute = (await import('node:net')).createServer(() => {});
    mute.listen(redisPort, '127.0.0.1');
    await once(mute, 'listening');
    try {
      const proxy = await startProxyProcess(
        { UPSTREAM_URL: hold.url, REDIS_URL: `redis://127.0.0.1:${redisPort}`, LOG_LEVEL: 'info' },
        { waitFor: 'none' },
      );
      await proxy.waitForLine('"msg":"starting"');
      const code = await proxy.stop('SIGTERM');
      expect(code, proxy.logs()).toBe(0);
      expect(proxy.logs()).toContain('stopped during start-up');
      expect(proxy.logs()).not.toMatch(/\n\s+at /);
    } finally {
      mute.close();
    }
  });

  it('SIGINT and SIGTERM right after listening drain an idle proxy to exit 0', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const proxy = await startProxyProcess({ UPSTREAM_URL: hold.url, LOG_LEVEL: 'info' });
      expect(await proxy.stop(signal)).toBe(0);
      expect(proxy.logs()).toContain('"msg":"draining"');
      expect(proxy.logs()).toContain('"msg":"stopped"');
    }
  });
});
