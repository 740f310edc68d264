import { defineConfig } from 'vitest/config';

// One runner for the whole repo. Workspace packages are consumed from source ("source" export
// condition), so tests never depend on a stale build — except the e2e suites, which start the built
// proxy process on purpose.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          // After the unit tests, not beside them: the fleet and two-budget suites measure rates
          // against the clock, and a 2-core machine busy with unit workers skews them.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
