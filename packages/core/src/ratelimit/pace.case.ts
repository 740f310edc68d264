// The adaptive pacer's parameters the pace tests share: the TypeScript arithmetic (pace.test.ts) and
// the paced Lua scripts (redis.test.ts) are held to the same numbers.
import type { PaceParams } from './pace.js';

export const PACE_PARAMS: PaceParams = {
  maxRatePerSec: 100,
  minRatePerSec: 1,
  initialRatePerSec: 50,
  decreaseFactor: 0.9,
  increaseStep: 2,
  probeIntervalMs: 1000,
};
