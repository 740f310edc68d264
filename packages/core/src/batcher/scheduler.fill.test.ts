// The fill cost of order-preserving packing (SPEC §5) on a mixed workload: conflicting writes must
// travel in separate batches, unrelated ops still fill them. Printed, and held to a floor.

import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect/dialect.js';
import { fakeTransport } from '../testing/fake-transport.js';
import { getOp, opOf } from '../testing/ops.js';
import { schedulerOptions } from '../testing/scheduler-options.js';
import { ManualClock } from './clock.js';
import { Scheduler } from './scheduler.js';

async function run(
  ops: OpRequest[],
  batchLimit: { ratePerSec: number; burst: number },
): Promise<{ batches: number; fill: number }> {
  // On a manual clock: the packing, not the machine's load, decides the result.
  const clock = new ManualClock();
  const upstream = fakeTransport(clock);
  upstream.latencyMs = 2;
  const scheduler = new Scheduler(
    schedulerOptions({
      clock,
      upstream,
      maxWaitMs: 60_000,
      queueMaxOps: 100_000,
      batchLimit,
    }),
  );
  let done = false;
  void Promise.all(ops.map((op) => scheduler.submit({ appId: 'app', credential: 'k', op }))).then(() => {
    done = true;
  });
  while (!done) await clock.advance(10);
  const batches = upstream.calls.length;
  return { batches, fill: ops.length / batches / 10 };
}

const post = (path: string): OpRequest => opOf('POST', path, [{ text: 'x' }]);

describe('fill cost of order-preserving packing', () => {
  it('costs no fill when batch tokens are what limits throughput', async () => {
    const n = 600;
    // Tokens bind (one batch per 10 ms): ops queue while they wait, as they do under load.
    const limit = { ratePerSec: 100, burst: 2 };
    const distinct = await run(
      Array.from({ length: n }, (_, i) => getOp(`/users/u${i}`)),
      limit,
    );
    // 30% messages to 20 hot conversations, the rest reads of distinct users, interleaved.
    const mixed = await run(
      Array.from({ length: n }, (_, i) =>
        i % 10 < 3 ? post(`/conversations/c${i % 20}/messages`) : getOp(`/users/u${i}`),
      ),
      limit,
    );
    console.log(
      `tokens binding: fill with no conflicts ${(distinct.fill * 100).toFixed(1)}% (${distinct.batches} batches); ` +
        `mixed ${(mixed.fill * 100).toFixed(1)}% (${mixed.batches} batches)`,
    );
    expect(distinct.fill).toBeGreaterThan(0.95);
    expect(mixed.fill).toBeGreaterThan(0.95);
  });

  it('sends unblocked ops at once when tokens are plentiful (latency first), at a fill cost', async () => {
    const n = 600;
    const limit = { ratePerSec: 100_000, burst: 100_000 };
    const mixed = await run(
      Array.from({ length: n }, (_, i) =>
        i % 10 < 3 ? post(`/conversations/c${i % 20}/messages`) : getOp(`/users/u${i}`),
      ),
      limit,
    );
    console.log(`tokens plentiful: mixed fill ${(mixed.fill * 100).toFixed(1)}% (${mixed.batches} batches)`);
    // Each of the 20 conversations has a chain of 9 messages: at least 9 rounds of batches.
    expect(mixed.batches).toBeGreaterThanOrEqual(9);
    expect(mixed.batches).toBeLessThan(n);
  });
});
