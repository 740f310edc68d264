// Preloaded into a server under test (`node --import`): counts the async resources it creates, by type
// (PROMISE, TickObject, Timeout…), and writes the totals as JSON to BENCH_ASYNC_COUNT_FILE on SIGUSR2.
// For `promises.ts`; never loaded by the proxy itself.

import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_ASYNC_COUNT_FILE;
if (!file) throw new Error('BENCH_ASYNC_COUNT_FILE must be set');
const counts: Record<string, number> = {};
createHook({
  init(_id, type) {
    counts[type] = (counts[type] ?? 0) + 1;
  },
}).enable();
process.on('SIGUSR2', () => writeFileSync(file, JSON.stringify(counts)));
