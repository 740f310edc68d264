// `pnpm mutation`: Stryker in incremental mode against the committed result
// (test/mutation/stryker-incremental.json), with one guard. Stryker re-runs a mutant when its own
// file or a test covering it changed; it cannot see the other inputs of a result (test support code
// that is neither mutated nor a test file, the Lua scripts, configs, dependency versions). Their
// fingerprint is kept beside the incremental file; when it differs, the run is a full one (--force),
// so a stale incremental file costs time, never a reused result that no longer holds.
// Extra arguments go to `stryker run` (e.g. --force for a full run).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, matchesGlob, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const FINGERPRINT = join(root, 'test/mutation/inputs.sha256');

// Files whose changes Stryker sees itself: tests, and the files `mutate` in stryker.config.mjs
// selects (node:path's glob matching; experimental in Node 20, hence the warning it prints).
const { default: config } = await import(pathToFileURL(join(root, 'stryker.config.mjs')).href);
const isMutated = (path) => {
  let selected = false;
  for (const pattern of config.mutate) {
    if (pattern.startsWith('!')) {
      if (matchesGlob(path, pattern.slice(1))) selected = false;
    } else if (matchesGlob(path, pattern)) selected = true;
  }
  return selected;
};
const seenByStryker = (path) => path.endsWith('.test.ts') || isMutated(path);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else out.push(path);
  }
  return out;
}

function inputs() {
  const files = [];
  for (const base of ['packages', 'apps']) {
    for (const pkg of readdirSync(join(root, base))) {
      const dir = join(root, base, pkg);
      if (!statSync(dir).isDirectory()) continue;
      files.push(join(dir, 'package.json'));
      if (existsSync(join(dir, 'src'))) files.push(...walk(join(dir, 'src')));
    }
  }
  const rel = files.map((f) => relative(root, f).split('\\').join('/')).filter((f) => !seenByStryker(f));
  rel.push(
    'pnpm-lock.yaml',
    'stryker.config.mjs',
    'vitest.mutation.config.ts',
    'tsconfig.base.json',
    'test/mutation/tsconfig.json',
  );
  return [...new Set(rel)].sort();
}

const NO_EFFECT = {
  thresholds: undefined,
  tempDirName: undefined,
  cleanTempDir: undefined,
  reporters: undefined,
  htmlReporter: undefined,
  clearTextReporter: undefined,
  concurrency: undefined,
};

function fingerprint() {
  const hash = createHash('sha256');
  for (const f of inputs()) {
    hash.update(`${f}\0`);
    // Options that change no mutant's result (threshold, where and how it reports, how many
    // runners) must not force a full run.
    if (f === 'stryker.config.mjs') hash.update(JSON.stringify({ ...config, ...NO_EFFECT }));
    else hash.update(readFileSync(join(root, f)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

if (process.argv[2] === '--list-inputs') {
  // What the fingerprint covers, one path a line.
  console.log(inputs().join('\n'));
  process.exit(0);
}
const now = fingerprint();
if (process.argv[2] === '--record-inputs') {
  // After a full run made with `stryker run` directly: record the inputs it ran against.
  writeFileSync(FINGERPRINT, `${now}\n`);
  process.exit(0);
}
const before = existsSync(FINGERPRINT) ? readFileSync(FINGERPRINT, 'utf8').trim() : '';
const args = process.argv.slice(2);
if (now !== before && !args.includes('--force')) {
  console.log('mutation: test support, configs or dependencies changed since the committed result: full run');
  args.push('--force');
}
const INCREMENTAL = join(root, 'test/mutation/stryker-incremental.json');
const mtime = () => (existsSync(INCREMENTAL) ? statSync(INCREMENTAL).mtimeMs : 0);
const written = mtime();
const run = spawnSync('stryker', ['run', ...args], { cwd: root, stdio: 'inherit' });
if (run.error) throw run.error;
// A run that wrote its result (whatever its score) describes the inputs it ran against.
if (mtime() !== written) writeFileSync(FINGERPRINT, `${now}\n`);
process.exit(run.status ?? 1);
