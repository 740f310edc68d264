// The process fault policy (docs/architecture.md): an error or rejection nobody handled is logged once
// through pino as `fatal` and the process exits 1 (non-zero: the orchestrator restarts it). Run in a
// real process with the built lifecycle module (tsc's per-file output, which the bundle is made from),
// since a fault ends the process under test.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROXY_DIR = fileURLToPath(new URL('../../apps/proxy/', import.meta.url));

function runWithFault(fault: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `
    import { PassThrough } from 'node:stream';
    import { pino } from 'pino';
    import { installFaultHandlers } from './dist/modules/process/lifecycle.js';
    installFaultHandlers(pino());
    setTimeout(() => { ${fault} }, 10);
    setTimeout(() => {}, 5000); // something still to do: only the fault may end the process
  `;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: PROXY_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('an unexpected fault', () => {
  for (const [name, fault] of [
    ['an uncaught exception', "throw new Error('boom-sync')"],
    ['an unhandled rejection', "Promise.reject(new Error('boom-async'))"],
    ['a stream error nobody listens to', "new PassThrough().destroy(new Error('boom-stream'))"],
  ] as const) {
    it(`${name}: one fatal line through pino, exit 1`, async () => {
      const result = await runWithFault(fault);
      expect(result.code, result.stderr).toBe(1);
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 60, err: { message: expect.stringMatching(/^boom-/) } });
      expect(result.stderr).toBe('');
    });
  }
});
