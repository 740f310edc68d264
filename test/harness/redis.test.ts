import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './ports.js';
import { type RedisProcess, startRedis } from './redis.js';

/** Sends one inline command over a raw socket and resolves with the first reply line. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      const end = data.indexOf('\r\n');
      if (end >= 0) {
        socket.end();
        resolve(data.slice(0, end));
      }
    });
    socket.on('error', reject);
  });
}

describe('startRedis', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());

  it('starts a redis-server that answers PING on its port', async () => {
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await command(redis.port, 'PING')).toBe('+PONG');
  });

  it('kill() makes it unreachable; restart() brings an empty one back on the same port', async () => {
    expect(await command(redis.port, 'SET k v')).toBe('+OK');
    await redis.kill();
    await expect(command(redis.port, 'PING')).rejects.toThrow(/ECONNREFUSED/);
    await redis.restart();
    expect(await command(redis.port, 'PING')).toBe('+PONG');
    expect(await command(redis.port, 'GET k')).toBe('$-1');
  });

  it('restart() also works while it is running', async () => {
    await redis.restart();
    expect(await command(redis.port, 'PING')).toBe('+PONG');
  });
});

describe('startRedis without redis-server', () => {
  it('fails with an install hint', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startRedis()).rejects.toThrow('apt-get install redis-server');
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('freePort', () => {
  it('returns a port in the valid range', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });
});
