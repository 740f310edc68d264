// A throwaway real redis-server for tests (the one helper every suite uses, unit and e2e): a free
// port on 127.0.0.1, no persistence, and control over its life (kill it, restart it on the same
// port) for the outage tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Graceful shutdown (SIGTERM). */
  stop(): Promise<void>;
  /** Abrupt death (SIGKILL), as a crashed or partitioned Redis looks to its clients. */
  kill(): Promise<void>;
  /** Starts it again on the same port (stopping it first if it still runs); resolves when ready. */
  restart(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** The executable. Default `redis-server` on the PATH. */
  bin?: string;
}

const READY = 'Ready to accept connections';

export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServer> {
  const bin = options.bin ?? 'redis-server';
  let child: ChildProcess | undefined;
  let port = 0;
  // A free port can be taken between finding it and redis-server binding it: try a few.
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(bin, port);
    } catch (error) {
      if (!(error instanceof PortInUseError) || attempt === 5) throw error;
    }
  }
  let current: ChildProcess = child;
  // Never leave a redis-server behind when the test process ends abruptly.
  const onProcessExit = () => current.kill('SIGKILL');
  process.on('exit', onProcessExit);

  const signal = async (name: NodeJS.Signals) => {
    if (!running(current)) return;
    const exited = exitOf(current);
    current.kill(name);
    await exited;
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await signal('SIGTERM');
      process.off('exit', onProcessExit);
    },
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM');
      current = await launch(bin, port);
    },
  };
}

class PortInUseError extends Error {}

function launch(bin: string, port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(READY)) {
        cleanup();
        resolve(child);
      }
    };
    const onError = (error: NodeJS.ErrnoException) => {
      cleanup();
      reject(
        error.code === 'ENOENT'
          ? new Error(
              `${bin} not found: the Redis tests need a real redis-server on the PATH (apt-get install redis-server)`,
            )
          : error,
      );
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      const message = `${bin} --port ${port} exited before it was ready (code ${code}, signal ${signal}):\n${output}`;
      reject(output.includes('Address already in use') ? new PortInUseError(message) : new Error(message));
    };
    const cleanup = () => {
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
      // Keep draining the log so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (!running(child)) resolve();
    else child.once('exit', () => resolve());
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
