// Runs one of the repo's scripts (scripts/*.mjs) as a child process, as `npm run` would.

import { type ChildProcess, spawn } from 'node:child_process';
import { repoRoot } from './repo-root.js';

export interface ScriptRun {
  child: ChildProcess;
  /** The first match of `ready` in its stdout. */
  match: RegExpExecArray;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `script` with node from the repo root with exactly `env`; resolves once its stdout matches
 * `ready`, rejects if it exits before.
 */
export function startScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<ScriptRun> {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: repoRoot(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = ready.exec(stdout);
      if (match) resolve({ child, match, stdout: () => stdout, stderr: () => stderr, exited });
    });
    void exited.then((code) => reject(new Error(`exited ${code} before ${ready}: ${stderr}`)));
  });
}
