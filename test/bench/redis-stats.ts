// Counting what a fleet asks of Redis: INFO commandstats (every command Redis ran, by name, including
// those run inside Lua scripts) and MONITOR (who sent each command, so round trips are told apart from
// script internals, and the limiter's operations — acquire, settle, pause, peek, one script — apart).

import { connect } from 'node:net';
import type { Redis } from 'ioredis';

/** calls per command name, from INFO commandstats. */
export async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== undefined && m[2] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** b − a per command, without the commands the benchmark itself sends (info, monitor). */
export function commandDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, calls] of Object.entries(b)) {
    if (name === 'info' || name === 'monitor') continue;
    const d = calls - (a[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

export interface Monitored {
  /** Commands sent by clients (round trips), by name; the limiter script by operation (`evalsha:acquire`). */
  client: Record<string, number>;
  /** Commands run inside Lua scripts (no round trip of their own), by name. */
  lua: Record<string, number>;
  stop(): Promise<void>;
}

/**
 * MONITOR on a raw connection: every command Redis runs, with where it came from, as it happens.
 * (ioredis's monitor mode trips over the `[0 lua]` lines of script-internal commands, and redis-cli
 * buffers its output when it writes to a pipe, which would blur the start and end of a window.)
 */
export async function monitor(port: number): Promise<Monitored> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const client: Record<string, number> = {};
  const lua: Record<string, number> = {};
  let buffered = '';
  let started = () => {};
  const ok = new Promise<void>((resolve) => {
    started = resolve;
  });
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\r\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '+OK') {
        started();
        continue;
      }
      // +1795641635.651144 [0 127.0.0.1:40000] "evalsha" "<sha>" "2" "<key>" "<key>:turns" "acquire" ...
      const m = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (!m) continue;
      const args = [...(m[2] ?? '').matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1] ?? '');
      let name = (args[0] ?? '?').toLowerCase();
      // The benchmark's own INFO calls are not the fleet's.
      if (name === 'info' || name === 'monitor') continue;
      if (m[1] === 'lua') {
        lua[name] = (lua[name] ?? 0) + 1;
        continue;
      }
      if ((name === 'evalsha' || name === 'eval') && (args[3] ?? '').includes('ratelimit')) {
        name = `${name}:${args[3 + Number(args[2] ?? 0)] ?? '?'}`;
      }
      client[name] = (client[name] ?? 0) + 1;
    }
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write('MONITOR\r\n');
  await Promise.race([ok, new Promise((resolve) => setTimeout(resolve, 2_000))]);
  return {
    client,
    lua,
    async stop() {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.destroy();
      await closed;
    },
  };
}
