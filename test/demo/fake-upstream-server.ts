// The fake TalkJS upstream as a long-running server (`npm run fake-upstream`, and infra/compose.yaml):
// the API on FAKE_PORT, and one log line per call it answers (FAKE_LOG=0 turns the log off), so
// someone trying the proxy without a TalkJS account sees each batch arrive. With FAKE_STATS_PORT set
// (compose and the image test set it), its statistics as JSON on that port too (GET /stats), which the
// compose load client reads; unset, no second port is opened.

import { createServer } from 'node:http';
import { type FakeCall, startFakeUpstream } from '../fake-upstream/index.js';
import { callLine, countersFromStats } from './scenario.js';

const env = process.env;
/** `appId:secret,appId:secret`: the apps the fake knows. */
const apps = Object.fromEntries(
  (env.FAKE_APPS ?? 'demo:sk_demo_not_a_real_key').split(',').map((pair) => {
    const [appId, secret] = pair.split(':');
    if (!appId || !secret) throw new Error(`FAKE_APPS: expected appId:secret, got "${pair}"`);
    return [appId, secret];
  }),
);
const host = env.FAKE_HOST ?? '0.0.0.0';

const upstream = await startFakeUpstream({
  apps,
  limits: {
    batch: {
      ratePerSec: Number(env.FAKE_BATCH_RATE_PER_SEC ?? 1),
      burst: Number(env.FAKE_BATCH_BURST ?? 500),
    },
  },
  latencyMs: Number(env.FAKE_LATENCY_MS ?? 20),
  port: Number(env.FAKE_PORT ?? 8081),
  host,
  ...(env.FAKE_LOG === '0' ? {} : { onCall: (call: FakeCall) => console.log(callLine(call)) }),
});

const statsPort = env.FAKE_STATS_PORT;
const stats =
  statsPort === undefined
    ? undefined
    : createServer((req, res) => {
        const body = req.url === '/stats' ? JSON.stringify(countersFromStats(upstream.stats)) : '{}';
        res.writeHead(req.url === '/stats' ? 200 : 404, { 'content-type': 'application/json' });
        res.end(body);
      }).listen(Number(statsPort), host);
console.log(
  `fake upstream on ${upstream.url} (apps: ${Object.keys(apps).join(', ')})${stats ? `, stats on :${statsPort}/stats` : ''}`,
);

const stop = () => {
  stats?.close();
  void upstream.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
