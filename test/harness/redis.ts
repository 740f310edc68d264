// A real, throw-away redis-server process per test suite: start, SIGKILL, restart on the same port.

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { freePort } from './ports.js';

export interface RedisProcess {
  url: string;
  port: number;
  /** SIGTERM, wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit: a crash, as seen by clients. */
  kill(): Promise<void>;
  /** Stops it if running, then starts a fresh (empty) one on the same port. */
  restart(): Promise<void>;
}

const READY = 'Ready to accept connections';
const START_TIMEOUT_MS = 10_000;

function findOnPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, bin);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Spawns redis-server on `port`; resolves once it logs that it accepts connections. */
function spawnRedis(bin: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} ${why}:\n${output}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(READY)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        // Keep draining so a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        resolve(child);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited during start-up (code ${code}, signal ${signal})`);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', onExit);
    child.once('error', (err) => fail(`could not be spawned: ${err.message}`));
  });
}

export async function startRedis(): Promise<RedisProcess> {
  const bin = findOnPath('redis-server');
  if (!bin) throw new Error('redis-server is not on PATH; install it: apt-get install redis-server');

  // Another process may grab the free port before redis binds it: retry with a new one.
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnRedis(bin, port);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }

  // Never leave a redis-server behind when the test process exits abruptly.
  let current: ChildProcess | undefined = child;
  const onProcessExit = () => current?.kill('SIGKILL');
  process.once('exit', onProcessExit);

  const signal = async (sig: NodeJS.Signals) => {
    const c = current;
    current = undefined;
    if (!c) return;
    c.kill(sig);
    await waitExit(c);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await signal('SIGTERM');
      process.off('exit', onProcessExit);
    },
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      current = await spawnRedis(bin, port);
      process.off('exit', onProcessExit);
      process.once('exit', onProcessExit);
    },
  };
}
