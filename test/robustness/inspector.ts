// The live heap of a proxy process after a full garbage collection, read through its inspector
// (started with `--inspect=127.0.0.1:0`). RSS alone cannot tell a leak from a heap that has not been
// collected yet: on a busy machine it swung by 20+ MB between waves with nothing kept. The heap after
// GC moves only with what the process keeps.

import { WebSocket } from 'undici';
import type { ProxyProcess } from '../harness/process.js';

/** Node options that open the inspector on a free loopback port (printed on stderr). */
export const INSPECT_ARGS = ['--inspect=127.0.0.1:0'];

export interface Inspector {
  /** Collects garbage, then returns the used heap in MB. */
  heapAfterGcMb(): Promise<number>;
  close(): void;
}

export async function connectInspector(proxy: ProxyProcess): Promise<Inspector> {
  const line = await proxy.waitForLine('Debugger listening on ws://');
  const url = /ws:\/\/\S+/.exec(line)?.[0];
  if (!url) throw new Error(`no inspector URL in: ${line}`);
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`inspector ${url} refused the connection`)), {
      once: true,
    });
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id === undefined) return;
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  });
  const call = (method: string) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method }));
    });
  return {
    async heapAfterGcMb() {
      await call('HeapProfiler.collectGarbage');
      const usage = (await call('Runtime.getHeapUsage')) as { usedSize: number };
      return usage.usedSize / 2 ** 20;
    },
    close: () => socket.close(),
  };
}
