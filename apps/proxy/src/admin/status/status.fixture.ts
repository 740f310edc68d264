// What the status page's tests share (not built: tsconfig.build.json leaves *.fixture.ts out): a
// sampler's options for tests that drive it by hand.

import type { AppSnapshot, StatusOptions } from './types.js';

export const LIMITS: StatusOptions['limits'] = {
  batch: { ratePerSec: 1, burst: 500 },
  rest: undefined,
  maxOps: 10,
  windowMs: 10,
};

/**
 * The sampler over `snapshot`'s apps, sampled by the test (no timer), every bucket peeked with 7
 * tokens and no cooldown, no Redis; `overrides` states what a test is about.
 */
export function statusOptions(
  snapshot: () => readonly AppSnapshot[],
  overrides: Partial<StatusOptions> = {},
): StatusOptions {
  return {
    snapshot,
    peek: async () => ({ tokens: 7, cooldownMs: 0 }),
    redisMode: () => 'none',
    limits: LIMITS,
    autoSample: false,
    ...overrides,
  };
}
