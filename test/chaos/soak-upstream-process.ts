// Parent side of soak-upstream.ts: compiles it (with the fake it imports) into test/.artifacts, forks
// it, and asks it over the IPC channel. The same path whether the soak runs from source (vitest) or
// compiled (`pnpm soak`): the child is always plain JavaScript run by node.

import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../harness/repo-root.js';
import type {
  SoakUpstreamReply,
  SoakUpstreamRequest,
  SoakUpstreamStats,
  SoakVerdict,
} from './soak-protocol.js';

export interface SoakUpstream {
  url: string;
  pid: number;
  register(app: string, secret: string): Promise<void>;
  burst(on: boolean): Promise<void>;
  stats(): Promise<SoakUpstreamStats>;
  verdict(sent: number): Promise<SoakVerdict>;
  close(): Promise<void>;
}

/** A request without its id (the channel numbers them). */
type Ask = SoakUpstreamRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** Compiles the child with test/chaos/soak-upstream.tsconfig.json; returns its entry. */
export function buildSoakUpstream(): string {
  const root = repoRoot();
  const tsc = createRequire(join(root, 'test/package.json')).resolve('typescript/bin/tsc');
  const out = spawnSync(process.execPath, [tsc, '-p', join(root, 'test/chaos/soak-upstream.tsconfig.json')], {
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`compiling soak-upstream.ts failed:\n${out.stdout}${out.stderr}`);
  return join(root, 'test/.artifacts/soak-upstream/chaos/soak-upstream.js');
}

export async function startSoakUpstream(
  options: { latencyMs?: [number, number] } = {},
): Promise<SoakUpstream> {
  const entry = buildSoakUpstream();
  const [lo, hi] = options.latencyMs ?? [2, 10];
  const child: ChildProcess = fork(entry, [], {
    env: { PATH: process.env.PATH ?? '', SOAK_UPSTREAM_LATENCY_MS: `${lo},${hi}` },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // It keeps every message posted (~150 MB after an hour at 1,000/s): room to spare.
    execArgv: ['--max-old-space-size=4096'],
  });
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const pending = new Map<number, (reply: SoakUpstreamReply) => void>();
  let nextId = 1;
  let exited = false;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('soak upstream not ready after 15 s')), 15_000);
    child.once('exit', (code, signal) => {
      exited = true;
      const error = new Error(`soak upstream exited (code ${code}, signal ${signal})`);
      reject(error);
      for (const answer of pending.values()) answer({ id: -1, error: error.message });
      pending.clear();
    });
    child.on('message', (reply: SoakUpstreamReply) => {
      if (reply.id === 0 && reply.url) {
        clearTimeout(timer);
        resolve(reply.url);
        return;
      }
      pending.get(reply.id)?.(reply);
      pending.delete(reply.id);
    });
  });
  const ask = (request: Ask, timeoutMs = 30_000) =>
    new Promise<SoakUpstreamReply>((resolve, reject) => {
      if (exited) return reject(new Error('soak upstream has exited'));
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`soak upstream: no answer to ${request.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.error) reject(new Error(`soak upstream, ${request.type}: ${reply.error}`));
        else resolve(reply);
      });
      child.send({ ...request, id } as SoakUpstreamRequest);
    });
  return {
    url,
    pid: child.pid ?? -1,
    register: async (app, secret) => {
      await ask({ type: 'register', app, secret }, 90_000);
    },
    burst: async (on) => {
      await ask({ type: 'burst', on });
    },
    async stats() {
      const reply = await ask({ type: 'stats' });
      if (!reply.stats) throw new Error('soak upstream: no stats in its answer');
      return reply.stats;
    },
    async verdict(sent) {
      const reply = await ask({ type: 'verdict', sent }, 60_000);
      if (!reply.verdict) throw new Error('soak upstream: no verdict in its answer');
      return reply.verdict;
    },
    async close() {
      process.off('exit', onExit);
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
