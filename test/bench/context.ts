// What every scenario shares: the repository root, the app the fake upstream knows, and how the real
// proxy process is started.

import { join } from 'node:path';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { repoRoot } from '../harness/repo-root.js';

export { repoRoot };

export const APP_ID = 'bench';
export const SECRET = 'sk_bench_not_a_real_key';
export const APPS = { [APP_ID]: SECRET };

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
