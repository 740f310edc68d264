// Parent side of upstream-server.ts: starts the fake upstream in a child process and reads its counters.

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BucketLimit } from '../fake-upstream/index.js';

/** The fake's counters at one instant (its own performance.now()). */
export interface UpstreamSnapshot {
  now: number;
  /** Calls that arrived (admitted or refused). */
  batchCalls: number;
  singleCalls: number;
  /** Calls the fake's limiter let in. */
  batchAdmitted: number;
  singleAdmitted: number;
  /** Ops carried by the executed batch calls. */
  batchOps: number;
  /** Refusals by the fake's rate limiter, both buckets. */
  rejected429: number;
  unauthorized: number;
}

/** Arrival times (the fake's clock) of the admitted calls, and the op count of each batch call. */
export interface UpstreamDetail {
  batchArrivals: number[];
  batchSizes: number[];
  restArrivals: number[];
}

export type UpstreamRequest = { id: number; type: 'snapshot' | 'reset' | 'detail' };
export interface UpstreamReply {
  id: number;
  url?: string;
  snapshot?: UpstreamSnapshot;
  detail?: UpstreamDetail;
}

export interface UpstreamOptions {
  apps: Record<string, string>;
  limits?: { batch?: BucketLimit; rest?: BucketLimit };
  latencyMs?: number;
}

export interface UpstreamProcess {
  url: string;
  pid: number;
  snapshot(): Promise<UpstreamSnapshot>;
  /** Every arrival since the last reset (keep runs that use it short). */
  detail(): Promise<UpstreamDetail>;
  reset(): Promise<UpstreamSnapshot>;
  close(): Promise<void>;
}

/** The difference of two snapshots: what happened between them. */
export function delta(a: UpstreamSnapshot, b: UpstreamSnapshot): UpstreamSnapshot {
  return {
    now: b.now - a.now,
    batchCalls: b.batchCalls - a.batchCalls,
    singleCalls: b.singleCalls - a.singleCalls,
    batchAdmitted: b.batchAdmitted - a.batchAdmitted,
    singleAdmitted: b.singleAdmitted - a.singleAdmitted,
    batchOps: b.batchOps - a.batchOps,
    rejected429: b.rejected429 - a.rejected429,
    unauthorized: b.unauthorized - a.unauthorized,
  };
}

const SERVER = fileURLToPath(new URL('./upstream-server.js', import.meta.url));

export async function startUpstream(options: UpstreamOptions): Promise<UpstreamProcess> {
  const child: ChildProcess = fork(SERVER, [], {
    env: { PATH: process.env.PATH ?? '', BENCH_UPSTREAM: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const pending = new Map<number, (reply: UpstreamReply) => void>();
  let nextId = 1;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('fake upstream not ready after 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
    child.on('message', (reply: UpstreamReply) => {
      if (reply.id === 0 && reply.url) {
        clearTimeout(timer);
        resolve(reply.url);
        return;
      }
      pending.get(reply.id)?.(reply);
      pending.delete(reply.id);
    });
  });
  const ask = (type: UpstreamRequest['type']) =>
    new Promise<UpstreamReply>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => reject(new Error(`fake upstream: no answer to ${type}`)), 10_000);
      pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      child.send({ id, type } satisfies UpstreamRequest);
    });
  const snap = async (type: 'snapshot' | 'reset') => {
    const reply = await ask(type);
    if (!reply.snapshot) throw new Error(`fake upstream: bad answer to ${type}`);
    return reply.snapshot;
  };
  return {
    url,
    pid: child.pid ?? -1,
    snapshot: () => snap('snapshot'),
    reset: () => snap('reset'),
    async detail() {
      const reply = await ask('detail');
      if (!reply.detail) throw new Error('fake upstream: bad answer to detail');
      return reply.detail;
    },
    async close() {
      process.off('exit', onExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
