// Starts the built proxy (apps/proxy/dist/main.js) as a real child process, the way it runs in prod.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

export interface ProxyProcess {
  url: string;
  adminUrl: string;
  child: ChildProcess;
  /** Sends the signal (default SIGTERM) and resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Everything it wrote to stdout and stderr so far. */
  logs(): string;
  /**
   * Resolves with the first output line (already written or still to come) containing `text`;
   * rejects after `timeoutMs` (default 5 s). Log lines are written after the answer they describe.
   */
  waitForLine(text: string, timeoutMs?: number): Promise<string>;
}

export interface StartProxyOptions {
  /** Script to run instead of the built proxy (the harness's own tests use a stub). */
  entry?: string;
  /** Bound on waiting for /readyz (default 15 s). */
  readyTimeoutMs?: number;
  /** After stop()'s signal, SIGKILL if still alive after this long (default 30 s). */
  killAfterMs?: number;
  /**
   * What "started" means: `/readyz` answers 200 (default), or `live`: `/healthz` answers 200 (a
   * proxy that is up but not ready, e.g. fail-closed without Redis), or `none`: spawned (for tests
   * of start-up itself; wait for its log lines with waitForLine).
   */
  waitFor?: 'ready' | 'live' | 'none';
  /** Node options before the entry script (e.g. `--inspect=127.0.0.1:0` for the memory tests). */
  nodeArgs?: string[];
}

export interface ExitedProcess {
  /** The exit code, or null when a signal ended it (or the bound ran out and it was killed). */
  code: number | null;
  /** Everything it wrote to stdout. */
  stdout: string;
  /** Everything it wrote to stderr. */
  stderr: string;
}

/**
 * Runs the built proxy with `env` until it exits on its own (a start-up mistake), killing it after
 * `timeoutMs` (default 15 s). For tests of what the process says and does when it cannot start.
 */
export async function runProxyToExit(
  env: Record<string, string>,
  options: { entry?: string; timeoutMs?: number } = {},
): Promise<ExitedProcess> {
  const entry = options.entry ?? MAIN;
  if (!existsSync(entry)) throw new Error(`${entry} does not exist; build the proxy first: pnpm build`);
  const child = spawn(process.execPath, [entry], {
    env: { ...inheritedEnv(), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    if (stdout.length < MAX_LOG_CHARS) stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < MAX_LOG_CHARS) stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
  // 'close', not 'exit': every byte of both pipes has been read by then.
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function inheritedEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  return base;
}

const MAIN = fileURLToPath(new URL('../../apps/proxy/dist/main.js', import.meta.url));
const MAX_LOG_CHARS = 4 * 1024 * 1024;
/** The only parts of the parent environment passed on, so a developer's shell cannot change a test. */
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SystemRoot'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the proxy (or `options.entry`) on free ports and waits for it to be ready. A port the harness
 * picked is free only until the child binds it: another test's process may take it first (a child
 * that then exits with EADDRINUSE). That start is made again on new ports, up to three times.
 */
export async function startProxyProcess(
  env: Record<string, string>,
  options: StartProxyOptions = {},
): Promise<ProxyProcess> {
  const picksPorts = env.PORT === undefined || env.ADMIN_PORT === undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(env, options);
    } catch (error) {
      const lostPort = error instanceof PortTakenError;
      if (!lostPort || !picksPorts || attempt === 3) throw lostPort ? error.cause : error;
    }
  }
}

/** A start that failed because a port picked for it was taken before the child bound it. */
class PortTakenError extends Error {}

async function startOnce(env: Record<string, string>, options: StartProxyOptions): Promise<ProxyProcess> {
  const entry = options.entry ?? MAIN;
  if (!existsSync(entry)) throw new Error(`${entry} does not exist; build the proxy first: pnpm build`);
  const host = env.HOST ?? '127.0.0.1';
  const port = env.PORT ?? String(await freePort());
  const adminPort = env.ADMIN_PORT ?? String(await freePort());
  const base = inheritedEnv();

  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), entry], {
    env: { ...base, HOST: host, PORT: port, ADMIN_PORT: adminPort, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const lineWaiters = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    if (output.length < MAX_LOG_CHARS) output += chunk.toString();
    for (const check of lineWaiters) check();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => {
      output += `\n[harness] spawn error: ${err.message}\n`;
      resolve(null);
    });
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const onProcessExit = () => child.kill('SIGKILL');
  process.once('exit', onProcessExit);

  const url = `http://${host}:${port}`;
  const adminUrl = `http://${host}:${adminPort}`;
  const proxy: ProxyProcess = {
    url,
    adminUrl,
    child,
    logs: () => output,
    waitForLine(text: string, timeoutMs = 5_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const line = output.split('\n').find((l, i, all) => i < all.length - 1 && l.includes(text));
          if (line === undefined) return;
          lineWaiters.delete(check);
          clearTimeout(timer);
          resolve(line);
        };
        const timer = setTimeout(() => {
          lineWaiters.delete(check);
          reject(new Error(`no output line containing ${JSON.stringify(text)} within ${timeoutMs} ms`));
        }, timeoutMs);
        lineWaiters.add(check);
        check();
      });
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!hasExited) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 30_000);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', onProcessExit);
      return exited;
    },
  };

  if (options.waitFor === 'none') return proxy;
  // Polling is fine here: start-up happens once per suite and has no event we could wait on.
  const probePath = options.waitFor === 'live' ? '/healthz' : '/readyz';
  const deadline = performance.now() + (options.readyTimeoutMs ?? 15_000);
  let last = 'no answer';
  while (performance.now() < deadline) {
    if (hasExited) {
      process.off('exit', onProcessExit);
      const error = new Error(`proxy exited with code ${await exited} before it was ready; logs:\n${output}`);
      if (output.includes('EADDRINUSE')) throw new PortTakenError('port taken', { cause: error });
      throw error;
    }
    try {
      const res = await fetch(`${adminUrl}${probePath}`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return proxy;
      last = `status ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(50);
  }
  await proxy.stop('SIGKILL');
  throw new Error(`proxy not ready at ${adminUrl}${probePath} after the timeout (${last}); logs:\n${output}`);
}
