// The second half of `pnpm build` (issue #17): tsc compiles src/ to dist/modules/, then this bundles
// that output, with @batch-proxy/core and the packages every mode uses (zod, Hono, pino, prom-client,
// the OpenTelemetry API), into one ESM file, dist/main.js. Node's loader then resolves and links one
// module at start instead of ~70, and reads one source: start-up CPU about −45 % and idle RSS about
// −10 MiB, measured (docs/benchmarks.md, issue #17).
//
// What only some modes load stays out of dist/main.js and is loaded on demand, as before:
// - the Redis limiter (`@batch-proxy/core/redis`) becomes the chunk dist/redis.js; ioredis itself stays
//   a package in node_modules, imported by that chunk. The Lua scripts it reads from `./scripts/`
//   next to itself are copied from core's build to dist/scripts/.
// - the trace SDK (tracing.ts) becomes the chunk dist/tracing.js; the SDK packages stay in
//   node_modules. They import their own copy of @opentelemetry/api, which finds the bundled one's
//   registrations through the API's process-wide global (the API is built for several copies).
// - jose (app-token mode) stays a package, imported on the first token check.
// - undici's Pool is bundled: core's upstream/undici-pool.ts `require`s its files from node_modules
//   (fine unbundled, for the tests), which made node resolve ~31 files one by one at start — enough to
//   heat its path functions into the optimising compiler, whose pages then stay resident. The bundle
//   takes the same four files as static imports instead (UNDICI_POOL below): idle RSS −1.6 MiB,
//   measured (docs/benchmarks.md, issue #17). Only undici's llhttp WebAssembly stays in node_modules:
//   it is large and loaded on the first upstream call.
// test/e2e/lazy-modules.test.ts checks each of these by running the built proxy.
//
// Files of src/ that are not TypeScript (the status page's .css, .html and .js, admin/status/) are
// inlined: each call of admin/status/assets.ts's `asset` (which reads the file at load when
// unbundled) becomes the file's text, so dist/main.js reads no file of them — the image keeps neither
// src/ nor dist/modules/. They are also copied beside tsc's output in dist/modules/, for the tests that
// import one built module on its own.

import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, watch } from 'rolldown';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, 'dist');
// tsc's per-file output: the bundler's input, and kept for the tests that import one built module on
// its own (test/robustness/faults.test.ts). The proxy never loads it.
const MODULES = join(DIST, 'modules');
const SRC = join(HERE, 'src');

/** Packages loaded only in some modes, imported from node_modules at run time. */
const EXTERNAL = [
  'ioredis',
  'jose',
  '@opentelemetry/context-async-hooks',
  '@opentelemetry/core',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/sdk-trace',
];

/**
 * What core's undici-pool.js does, as static imports the bundler can follow. Its exports must stay
 * the same as undici-pool.ts's: the bundle fails to build if one it imports is missing here.
 */
const UNDICI_POOL = `
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import PoolOfUndici from 'undici/lib/dispatcher/pool.js';
import errorsOfUndici from 'undici/lib/core/errors.js';
Object.assign(Dispatcher.prototype, api);
export const Pool = PoolOfUndici;
export const errors = errorsOfUndici;
`;

const undiciPool = {
  name: 'undici-pool',
  load: (id) => (id.endsWith('/upstream/undici-pool.js') ? UNDICI_POOL : null),
  // The llhttp WebAssembly (as base64 in a JS file) stays a file undici loads when it first parses.
  resolveId: (source) => {
    const wasm = /(llhttp(?:_simd)?-wasm\.js)$/.exec(source);
    return wasm ? { id: `undici/lib/llhttp/${wasm[1]}`, external: true } : null;
  },
};

/** The files of src/ that tsc does not compile: the assets, by their path below src/. */
const assets = () =>
  readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((path) => /\.(css|html|js)$/.test(path));

/** A call of admin/status/assets.ts's function with a literal name (`./page.css`), the one form. */
const ASSET_CALL = /\basset\('(\.\/[\w.-]+)'\)/g;

const inlineAssets = {
  name: 'inline-assets',
  buildStart() {
    for (const path of assets()) {
      cpSync(join(SRC, path), join(MODULES, path));
      this.addWatchFile(join(SRC, path));
    }
  },
  transform(code, id) {
    if (!id.startsWith(MODULES) || !code.includes("asset('")) return null;
    const dir = join(SRC, relative(MODULES, dirname(id)));
    return code.replace(ASSET_CALL, (_, name) => JSON.stringify(readFileSync(join(dir, name), 'utf8')));
  },
  // A call left (another form, a name not a literal) would read a file the image does not have.
  renderChunk(code, chunk) {
    if (/\basset\(/.test(code)) this.error(`${chunk.fileName}: an asset() call was not inlined`);
    return null;
  },
};

const options = {
  input: join(MODULES, 'process', 'main.js'),
  platform: 'node',
  plugins: [undiciPool, inlineAssets],
  external: (id) => EXTERNAL.some((name) => id === name || id.startsWith(`${name}/`)),
  logLevel: 'warn',
  output: {
    dir: DIST,
    format: 'esm',
    // Fixed names: the chunks sit beside main.js (they read files relative to themselves).
    entryFileNames: '[name].js',
    chunkFileNames: '[name].js',
    // V8 keeps each module's source in the heap, one byte per character when all of it is Latin-1
    // and two otherwise: a single `→` doubled the bundle's ~0.7 MB. So non-ASCII characters in code
    // are escaped (`…` as \u2026, which means the same in strings, templates and regular
    // expressions), and the doc comments, where most of them were, are left out; licence comments
    // stay. −0.7 MiB of idle RSS, measured. Stack traces keep their names (nothing is minified).
    charset: 'ascii',
    comments: { legal: true, annotation: false, jsdoc: false },
  },
};

if (process.argv.includes('--watch')) {
  // `pnpm dev`: rebundles whenever `tsc --watch` rewrites dist/modules/ (after a pause, so not
  // while tsc is still writing its files).
  watch({ ...options, watch: { buildDelay: 500 } }).on('event', (event) => {
    if (event.code === 'ERROR') process.stderr.write(`${event.error}\n`);
    if (event.code === 'BUNDLE_END') {
      event.result.close();
      process.stderr.write(`bundled dist/main.js in ${event.duration} ms\n`);
    }
  });
} else await build(options);

// The Redis limiter's Lua scripts, read by the redis chunk from `new URL('./scripts/', import.meta.url)`.
const require = createRequire(join(HERE, 'package.json'));
const coreRedis = require.resolve('@batch-proxy/core/redis');
rmSync(join(DIST, 'scripts'), { recursive: true, force: true });
cpSync(join(dirname(coreRedis), 'ratelimit', 'scripts'), join(DIST, 'scripts'), { recursive: true });
