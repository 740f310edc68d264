// Starts the bare node:http floor (bare-server.ts), or another server script of this folder that
// reports its port over IPC (layer-server.ts), as its own process.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface BareServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export function startBareServer(): Promise<BareServer> {
  return startServerScript('bare-server.js');
}

/** Forks `script` (beside this file) with `args`; resolves once it has sent `{ port }`. */
export async function startServerScript(script: string, args: string[] = []): Promise<BareServer> {
  const child = fork(fileURLToPath(new URL(`./${script}`, import.meta.url)), args, {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    async stop() {
      process.off('exit', onExit);
      child.kill('SIGKILL');
      await exited;
    },
  };
}
