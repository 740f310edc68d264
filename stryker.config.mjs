// Mutation testing (issue #21, docs/testing.md): Stryker plants small bugs in the engine and the
// edge's security code, one at a time, and runs the unit tests against each; a bug no test notices
// is a "survivor". `pnpm mutation` runs it; CI runs it incrementally (scripts/test-all.sh).

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
// biome-ignore lint/style/noDefaultExport: Stryker reads its config from the default export.
export default {
  mutate: [
    'packages/core/src/**/*.ts',
    '!packages/core/src/**/*.test.ts',
    '!packages/core/src/**/*.case.ts', // shared test cases (limiter.case.ts), not product code
    '!packages/core/src/testing/**',
    '!packages/core/src/index.ts', // re-exports only
    // Not yet (docs/testing.md, "Scope"): a full run of these did not fit on the 2-core machine
    // shared with the engine redesign, which rewrites scheduler.ts anyway. Add them back with the
    // redesign and regenerate the incremental file.
    '!packages/core/src/batcher/scheduler.ts',
    '!packages/core/src/ratelimit/{redis,fallback}.ts',
    '!packages/core/src/upstream/client.ts', // covered by the e2e suites only
    'apps/proxy/src/{classify,auth,passthrough,secrets}.ts',
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
  thresholds: { high: 90, low: 85, break: 88 },
  // A mutant that loops forever is a kill (timeout); keep the wait for it short.
  timeoutMS: 3_000,
};
