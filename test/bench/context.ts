// What every scenario shares: the repository root, the app the fake upstream knows, and how the real
// proxy process is started.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';

export const APP_ID = 'bench';
export const SECRET = 'sk_bench_not_a_real_key';
export const APPS = { [APP_ID]: SECRET };

/** The repository root, found from this file whether it runs compiled (test/bench/dist/…) or not. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (pnpm-workspace.yaml)');
    dir = parent;
  }
  return dir;
}

/**
 * The built proxy (apps/proxy/dist/main.js) as a child process. LOG_LEVEL=warn: the per-request
 * access log at `info` is an operator's choice, and nginx runs with `access_log off` too.
 */
export function startProxy(env: Record<string, string>, entry?: string): Promise<ProxyProcess> {
  return startProxyProcess(
    { LOG_LEVEL: 'warn', BATCH_MAX_OPS: '10', ...env },
    { entry: entry ?? join(repoRoot(), 'apps/proxy/dist/main.js'), killAfterMs: 10_000 },
  );
}

export function pidOf(proxy: ProxyProcess): number {
  const pid = proxy.child.pid;
  if (pid === undefined) throw new Error('proxy has no pid');
  return pid;
}
