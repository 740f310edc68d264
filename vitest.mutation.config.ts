import { defineConfig } from 'vitest/config';

// The unit project alone, for Stryker (stryker.config.mjs): the e2e suites start the built proxy
// process, which never sees a mutant, so running them under Stryker would only cost time.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    name: 'unit',
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
    // A measurement (batch fill on a mixed load, held to a floor), 1.3 s a run: not a correctness
    // check worth paying for once per mutant.
    exclude: ['packages/core/src/batcher/scheduler.fill.test.ts'],
    // The scheduler's property test runs once per mutant here: 25 random runs instead of 100.
    env: { PROPERTY_RUNS: '25' },
  },
});
