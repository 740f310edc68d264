// Mutation testing (issue #21, docs/testing.md): Stryker plants small bugs in the engine and the
// edge's security code, one at a time, and runs the unit tests against each; a bug no test notices
// is a "survivor". `pnpm mutation` runs it; CI runs it incrementally (scripts/test-all.sh).

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
// biome-ignore lint/style/noDefaultExport: Stryker reads its config from the default export.
export default {
  mutate: [
    // The engine's decisions (pure modules: the ops' states, what leaves when, which answer goes to
    // whom, when to retry, when the breaker opens, a bucket's budget, priorities), the limiter's
    // arithmetic and the in-process limiter, the dialects' wire formats (TalkJS, Graph, JSON-RPC,
    // Google batch, the dialect-file interpreter), the edge's security code and caller hints, the
    // pump (when a pass runs and when it wakes) and the lanes (when to ask again). Not yet
    // (docs/testing.md, "Scope", with each file's measured score): answer.ts, the wiring
    // (scheduler.ts, app-engine.ts, dispatch.ts), the pacer, the Redis and fallback limiters and the
    // upstream client, which the e2e suites cover.
    'packages/core/src/batcher/{app-state,bounded-map,breaker,budget,domains,group-queue,lanes,outcome,planner,priority,pump,resources,retry,scopes}.ts',
    'packages/core/src/dialect/{talkjs,graph,headers,envelope,jsonrpc,json-members,google-batch,multipart}.ts',
    // Dialect files (issue #29): the interpreter, its templates, patterns, results and checks.
    'packages/core/src/dialect/file/{dialect,template,pattern,results,validate}.ts',
    'packages/core/src/ratelimit/{gcra,memory,rate-headers,header-pace}.ts',
    'packages/core/src/errors.ts',
    'apps/proxy/src/http/{route,auth,passthrough,secrets,caller-hints,priority-rules}.ts',
  ],

  // Named explicitly: with pnpm, Stryker's own folder does not hold its sibling plugins.
  plugins: ['@stryker-mutator/vitest-runner', '@stryker-mutator/typescript-checker'],
  testRunner: 'vitest',
  // Unit tests only: the e2e suites start the built proxy, which never sees a mutant.
  vitest: { configFile: 'vitest.mutation.config.ts' },
  // The TypeScript checker (installed; `pnpm mutation --checkers typescript` turns it on) would
  // drop mutants that do not compile before running them. It is off by default: Stryker gives
  // checkers half the worker slots (ceil(concurrency / 2)), and on this 2-core machine they used
  // more CPU than the test runners, doubling a full run. See docs/testing.md.
  checkers: [],
  tsconfigFile: 'test/mutation/tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // Incremental: only mutants whose code or covering tests changed since the committed result are
  // run again. A stale file costs time, never a wrong result (see docs/testing.md).
  incremental: true,
  incrementalFile: 'test/mutation/stryker-incremental.json',
  reporters: ['html', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'test/.artifacts/mutation/index.html' },
  clearTextReporter: { allowColor: false, logTests: false },
  // Outside test/: the e2e project's `test/**/*.test.ts` would pick up a sandbox left by a killed run.
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  // Four test runners on two cores: a runner often waits on a test's timers, not the CPU.
  concurrency: 4,
  // Static mutants (module-level constants) have no per-test coverage: each would rerun every unit
  // test (~40 s here). Left out to keep a full run near half an hour; see docs/testing.md.
  ignoreStatic: true,
  // The committed score minus ~3 points: CI fails when a change lowers the score past it.
  thresholds: { high: 90, low: 85, break: 91 },
  // A mutant that loops forever is a kill (timeout); keep the wait for it short.
  timeoutMS: 3_000,
};
