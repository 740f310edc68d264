#!/usr/bin/env node
// `npm run proxy`: installs, builds and starts the proxy on a machine with only Node and npm, and on
// later starts skips what is already done. Install runs when node_modules is missing or the lockfile
// (or a package.json) changed since the last install; build when a dist is missing or a source is
// newer than the last build. The proxy then runs in this same process (no second Node start).
//
// `--dry-run` prints what it would do as JSON and exits. Its own messages go to stderr, so stdout
// stays the proxy's JSON log; install and build output go to stderr too.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** Written after a successful install / build: pnpm itself may leave its files untouched on a no-op. */
const INSTALLED = join(ROOT, 'node_modules', '.proxy-installed');
const BUILT = join(ROOT, 'apps', 'proxy', 'dist', '.proxy-built');
const MAIN = join(ROOT, 'apps', 'proxy', 'dist', 'main.js');

/** Modification time in ms; 0 when the file does not exist. */
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** The workspace packages in `group` (apps, packages): folders with a package.json. */
function workspaces(group) {
  const dir = join(ROOT, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((pkg) => existsSync(join(pkg, 'package.json')));
}

/** The newest modification time of the build's inputs: src (not tests; Lua too), tsconfigs, manifests,
 * build scripts. */
function newestSource(pkgs) {
  let newest = mtime(join(ROOT, 'tsconfig.base.json'));
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (!/\.(test|case)\.ts$/.test(entry.name)) newest = Math.max(newest, mtime(path));
    }
  };
  for (const pkg of pkgs) {
    for (const file of readdirSync(pkg)) {
      // Build scripts beside the manifest count too (apps/proxy/bundle.mjs).
      if (file === 'package.json' || /^tsconfig.*\.json$/.test(file) || /\.mjs$/.test(file))
        newest = Math.max(newest, mtime(join(pkg, file)));
    }
    if (existsSync(join(pkg, 'src'))) walk(join(pkg, 'src'));
  }
  return newest;
}

/** Why the workspace's dependencies must be installed first; null when they are up to date. */
export function installReason() {
  const pkgs = [...workspaces('apps'), ...workspaces('packages')];
  const installedAt = Math.max(
    mtime(INSTALLED),
    mtime(join(ROOT, 'node_modules', '.modules.yaml')),
    mtime(join(ROOT, 'node_modules', '.pnpm', 'lock.yaml')),
  );
  const manifests = [join(ROOT, 'package.json'), join(ROOT, 'pnpm-workspace.yaml')]
    .concat(pkgs.map((pkg) => join(pkg, 'package.json')))
    .filter((file) => existsSync(file));
  if (!existsSync(join(ROOT, 'node_modules', '.modules.yaml'))) return 'node_modules missing';
  if (pkgs.some((pkg) => !existsSync(join(pkg, 'node_modules')))) return 'a package has no node_modules';
  if (mtime(join(ROOT, 'pnpm-lock.yaml')) > installedAt)
    return 'pnpm-lock.yaml changed since the last install';
  if (manifests.some((file) => mtime(file) > installedAt))
    return 'a package.json changed since the last install';
  return null;
}

/** What has to happen before the proxy can start, each with its reason (null: nothing to do). */
export function plan() {
  const libs = workspaces('packages');
  const pkgs = [...workspaces('apps'), ...libs];
  const install = installReason();
  let build = null;
  const outputs = [MAIN, ...libs.map((pkg) => join(pkg, 'dist', 'index.js'))];
  const missing = outputs.find((file) => !existsSync(file));
  // A build by hand (`pnpm build`) counts too: every output is rewritten on each build.
  const builtAt = Math.max(mtime(BUILT), Math.min(...outputs.map(mtime)));
  if (missing) build = `${missing.slice(ROOT.length + 1)} missing`;
  else if (install) build = 'dependencies are being installed';
  else if (newestSource(pkgs) > builtAt) build = 'sources changed since the last build';
  else if (mtime(join(ROOT, 'pnpm-lock.yaml')) > builtAt)
    build = 'pnpm-lock.yaml changed since the last build';
  return { install, build };
}

/** `npx pnpm@<packageManager version> <args>`, output on stderr; exits on failure. */
function pnpm(args, who) {
  const manager = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).packageManager ?? 'pnpm';
  const result = spawnSync('npx', ['--yes', manager.split('+')[0], ...args], {
    cwd: ROOT,
    stdio: ['inherit', 2, 2],
    shell: process.platform === 'win32',
  });
  if (result.error) {
    console.error(`${who}: could not run npx (${result.error.message}); it comes with npm`);
    process.exit(1);
  }
  if (result.status !== 0) process.exit(result.status ?? 1);
}

/** `pnpm install --frozen-lockfile`, its output on stderr, remembered for installReason. */
export function install(reason, who) {
  console.error(`${who}: installing dependencies (${reason})`);
  pnpm(['install', '--frozen-lockfile'], who);
  writeFileSync(INSTALLED, `${new Date().toISOString()}\n`);
}

async function main() {
  const todo = plan();
  if (process.argv.includes('--dry-run')) {
    console.log(JSON.stringify(todo));
    return;
  }
  if (todo.install) install(todo.install, 'proxy');
  if (todo.build) {
    console.error(`proxy: building (${todo.build})`);
    pnpm(['run', 'build'], 'proxy');
    writeFileSync(BUILT, `${new Date().toISOString()}\n`);
  }
  if (!todo.install && !todo.build) console.error('proxy: dependencies and build up to date');
  await import(pathToFileURL(MAIN).href);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
