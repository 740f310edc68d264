#!/usr/bin/env node
// `npm run fake-upstream [-- --dialect talkjs|graph|jsonrpc|salesforce-composite|google-batch]`: a fake upstream to try the proxy against
// without an account, on FAKE_PORT (8081). Like `npm run proxy`, it installs dependencies only when
// they are missing or stale, and compiles the fakes (test/demo/tsconfig.json) only when a source is
// newer than the last compile; a start with both up to date takes well under a second. The fake then
// runs in this same process, which npm starts in place of its shell (`exec`): a SIGTERM or SIGINT that
// npm passes on reaches the fake, which closes its port and exits, and leaves nothing behind.
//
// Its own messages go to stderr; stdout is the fake's call log.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { install, installReason } from './proxy.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DIST = join(ROOT, 'test', 'demo', 'dist');
/** Written after a successful compile: tsc leaves an unchanged output's time as it was. */
const BUILT = join(DIST, '.fake-built');

/**
 * Each dialect's fake: its server, compiled from test/demo/<name>.ts. Another dialect is one more
 * server file there (listed in test/demo/tsconfig.json) and one more row here.
 */
const STARTERS = {
  talkjs: 'fake-upstream-server.js',
  graph: 'fake-graph-server.js',
  jsonrpc: 'fake-jsonrpc-server.js',
  'salesforce-composite': 'fake-salesforce-server.js',
  'google-batch': 'fake-google-server.js',
};

/** What the fakes are compiled from: their folders' sources (not tests) and the tsconfigs. */
const SOURCE_DIRS = [
  'test/demo',
  'test/fake-upstream',
  'test/fake-graph',
  'test/fake-jsonrpc',
  'test/fake-salesforce',
  'test/fake-google',
  'test/harness',
];
const CONFIGS = ['tsconfig.base.json', 'test/demo/tsconfig.json'];

/** Modification time in ms; 0 when the file does not exist. */
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function newestSource() {
  let newest = Math.max(...CONFIGS.map((file) => mtime(join(ROOT, file))));
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'dist' && entry.name !== 'node_modules') walk(path);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        newest = Math.max(newest, mtime(path));
      }
    }
  };
  for (const dir of SOURCE_DIRS) if (existsSync(join(ROOT, dir))) walk(join(ROOT, dir));
  return newest;
}

/** Why the fakes must be compiled first; null when every server is newer than its sources. */
export function buildReason() {
  const outputs = Object.values(STARTERS).map((file) => join(DIST, 'demo', file));
  const missing = outputs.find((file) => !existsSync(file));
  if (missing) return `${missing.slice(ROOT.length + 1)} missing`;
  // A compile by hand (`pnpm demo`) counts too: tsc rewrites every output it emits.
  const builtAt = Math.max(mtime(BUILT), Math.min(...outputs.map(mtime)));
  return newestSource() > builtAt ? 'sources changed since the last compile' : null;
}

/** `--dialect graph` or `--dialect=graph`; talkjs when not given. */
function dialectArg(argv) {
  const at = argv.findIndex((arg) => arg === '--dialect' || arg.startsWith('--dialect='));
  if (at === -1) return 'talkjs';
  return argv[at].includes('=') ? argv[at].slice('--dialect='.length) : argv[at + 1];
}

async function main() {
  const dialect = dialectArg(process.argv.slice(2));
  const starter = Object.hasOwn(STARTERS, dialect) ? STARTERS[dialect] : undefined;
  if (!starter) {
    console.error(`fake-upstream: unknown dialect "${dialect}" (known: ${Object.keys(STARTERS).join(', ')})`);
    process.exit(2);
  }
  const needsInstall = installReason();
  if (needsInstall) install(needsInstall, 'fake-upstream');
  const needsBuild = buildReason();
  if (needsBuild) {
    console.error(`fake-upstream: compiling the fakes (${needsBuild})`);
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'test', 'demo', 'tsconfig.json')], {
      cwd: ROOT,
      stdio: ['ignore', 2, 2],
    });
    if (result.status !== 0) process.exit(result.status ?? 1);
    writeFileSync(BUILT, `${new Date().toISOString()}\n`);
  }
  if (!needsInstall && !needsBuild) console.error('fake-upstream: dependencies and build up to date');
  // Loopback unless told otherwise: the fake has no real security, and the servers default to all
  // interfaces for compose.
  process.env.FAKE_HOST ??= '127.0.0.1';
  await import(pathToFileURL(join(DIST, 'demo', starter)).href);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
