// `npm run proxy` (scripts/proxy.mjs): one command on a fresh machine, and later starts that do not
// reinstall or rebuild. What it would do is asked with `--dry-run` in a copy of the script inside a
// fixture tree whose file times are set, not waited for; then the real script starts the real
// (installed, built) proxy with no npx on PATH, so any install or build attempt would fail it.

import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript } from '../harness/script.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'proxy.mjs');
/** Times in seconds since the epoch: sources at T0, install and build outputs at T1, edits at T2. */
const T0 = 1_700_000_000;
const T1 = T0 + 60;
const T2 = T1 + 60;

const INPUTS = [
  'package.json',
  'pnpm-workspace.yaml',
  'pnpm-lock.yaml',
  'tsconfig.base.json',
  'apps/proxy/package.json',
  'apps/proxy/tsconfig.json',
  'apps/proxy/src/main.ts',
  'apps/proxy/src/main.test.ts',
  'packages/core/package.json',
  'packages/core/src/index.ts',
  'packages/core/src/ratelimit/gcra.lua',
];
const INSTALLED = [
  'node_modules/.modules.yaml',
  'apps/proxy/node_modules/.keep',
  'packages/core/node_modules/.keep',
];
const BUILT = ['apps/proxy/dist/main.js', 'packages/core/dist/index.js'];

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A workspace tree with the script in it: sources, and optionally an install and a build. */
function fixture(has: { installed?: boolean; built?: boolean }) {
  const root = mkdtempSync(join(tmpdir(), 'proxy-command-'));
  dirs.push(root);
  const write = (path: string, at: number) => {
    const file = join(root, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, path.endsWith('package.json') ? '{"packageManager":"pnpm@10.34.9"}' : '');
    utimesSync(file, at, at);
  };
  for (const path of INPUTS) write(path, T0);
  if (has.installed) for (const path of INSTALLED) write(path, T1);
  if (has.built) for (const path of BUILT) write(path, T1);
  mkdirSync(join(root, 'scripts'));
  copyFileSync(SCRIPT, join(root, 'scripts', 'proxy.mjs'));
  return {
    touch: (path: string) => write(path, T2),
    remove: (path: string) => rmSync(join(root, path), { recursive: true }),
    plan: () =>
      JSON.parse(
        execFileSync(process.execPath, [join(root, 'scripts', 'proxy.mjs'), '--dry-run'], {
          encoding: 'utf8',
        }),
      ),
  };
}

describe('npm run proxy decides what to do', () => {
  it('installs and builds on a fresh clone', () => {
    expect(fixture({}).plan()).toEqual({
      install: 'node_modules missing',
      build: 'apps/proxy/dist/main.js missing',
    });
  });

  it('does neither once installed and built', () => {
    expect(fixture({ installed: true, built: true }).plan()).toEqual({ install: null, build: null });
  });

  it('reinstalls (and rebuilds) when the lockfile or a package.json changed', () => {
    const f = fixture({ installed: true, built: true });
    f.touch('pnpm-lock.yaml');
    expect(f.plan()).toEqual({
      install: 'pnpm-lock.yaml changed since the last install',
      build: 'dependencies are being installed',
    });
    const g = fixture({ installed: true, built: true });
    g.touch('packages/core/package.json');
    expect(g.plan().install).toBe('a package.json changed since the last install');
  });

  it('reinstalls when a package lost its node_modules', () => {
    const f = fixture({ installed: true, built: true });
    f.remove('packages/core/node_modules');
    expect(f.plan().install).toBe('a package has no node_modules');
  });

  it('rebuilds, without installing, when a source, a Lua asset or a tsconfig is newer than the build', () => {
    for (const path of [
      'apps/proxy/src/main.ts',
      'packages/core/src/ratelimit/gcra.lua',
      'apps/proxy/tsconfig.json',
    ]) {
      const f = fixture({ installed: true, built: true });
      f.touch(path);
      expect(f.plan(), path).toEqual({ install: null, build: 'sources changed since the last build' });
    }
  });

  it('does not rebuild for a test file, and does when an output is missing', () => {
    const f = fixture({ installed: true, built: true });
    f.touch('apps/proxy/src/main.test.ts');
    expect(f.plan()).toEqual({ install: null, build: null });
    f.remove('packages/core/dist/index.js');
    expect(f.plan()).toEqual({ install: null, build: 'packages/core/dist/index.js missing' });
  });
});

describe('npm run proxy, started again', () => {
  it('is the script, run in place of npm’s shell so signals reach the proxy', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.proxy).toBe('exec node scripts/proxy.mjs');
  });

  it('starts the built proxy without npx (no install, no build) and stops it on SIGTERM', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'proxy-command-path-'));
    dirs.push(empty);
    const { child, stdout, stderr, exited } = await startScript(
      SCRIPT,
      [],
      // No npx, npm or pnpm reachable: trying to install or build would fail the start.
      { PATH: empty, PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', UPSTREAM_URL: 'http://127.0.0.1:9' },
      /"msg":"batch proxy listening"/,
    );
    expect(stderr()).toBe('proxy: dependencies and build up to date\n');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout()).toContain('"msg":"stopped"');
  });
});
