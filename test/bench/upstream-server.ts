// The fake TalkJS upstream in its own process for the benchmarks, so its work does not share an event
// loop with the load generator. Started by upstream.ts with fork(); options come in BENCH_UPSTREAM (JSON),
// requests for counters come over the IPC channel.

import { performance } from 'node:perf_hooks';
import { type FakeUpstreamOptions, startFakeUpstream } from '../fake-upstream/index.js';
import type { UpstreamReply, UpstreamRequest, UpstreamSnapshot } from './upstream.js';

const options = JSON.parse(process.env.BENCH_UPSTREAM ?? '{}') as Pick<
  FakeUpstreamOptions,
  'apps' | 'limits' | 'latencyMs'
>;
const fake = await startFakeUpstream({ ...options, seed: 1 });

function snapshot(): UpstreamSnapshot {
  const s = fake.stats;
  let batchOps = 0;
  for (const n of s.batchSizes) batchOps += n;
  return {
    now: performance.now(),
    batchCalls: s.batchCalls,
    singleCalls: s.singleCalls,
    batchAdmitted: s.arrivals.batch.length,
    singleAdmitted: s.arrivals.rest.length,
    batchOps,
    rejected429: s.rejected429.batch + s.rejected429.rest,
    unauthorized: s.unauthorized,
  };
}

process.on('message', (message: UpstreamRequest) => {
  let reply: UpstreamReply;
  if (message.type === 'snapshot') reply = { id: message.id, snapshot: snapshot() };
  else if (message.type === 'detail') {
    reply = {
      id: message.id,
      snapshot: snapshot(),
      detail: {
        batchArrivals: fake.stats.arrivals.batch,
        batchSizes: fake.stats.batchSizes,
        restArrivals: fake.stats.arrivals.rest,
      },
    };
  } else {
    // The executed log and the data grow with every call: start each run empty.
    fake.reset();
    reply = { id: message.id, snapshot: snapshot() };
  }
  process.send?.(reply);
});
process.once('disconnect', () => {
  void fake.close().then(() => process.exit(0));
});
process.send?.({ id: 0, url: fake.url });
