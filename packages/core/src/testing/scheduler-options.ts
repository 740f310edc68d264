// One place for the Scheduler's options in tests: a test states only what it is about. Defaults:
// the TalkJS dialect, an in-process limiter (on the test's clock, if it gives one), roomy budgets,
// no single lane, no retries, and each group's credential sent as its Authorization.

import type { SchedulerOptions } from '../batcher/config.js';
import { talkjs } from '../dialect/talkjs.js';
import { MemoryLimiter } from '../ratelimit/memory.js';

export type TestSchedulerOptions = Partial<SchedulerOptions> & Pick<SchedulerOptions, 'upstream'>;

export function schedulerOptions(overrides: TestSchedulerOptions): SchedulerOptions {
  const clock = overrides.clock;
  return {
    dialect: talkjs,
    limiter: new MemoryLimiter(clock ? { now: () => clock.now() } : {}),
    upstreamId: 'test',
    windowMs: 5,
    maxOps: 10,
    maxWaitMs: 30_000,
    queueMaxOps: 10_000,
    batchLimit: { ratePerSec: 1_000, burst: 1_000 },
    restLimit: undefined,
    batchOpsSpendRest: false,
    singleOpDirect: false,
    maxAttempts: 1,
    leaseMs: 5_000,
    authorize: (_app, credential) => credential,
    ...overrides,
  };
}
