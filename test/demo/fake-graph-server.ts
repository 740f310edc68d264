// The fake Microsoft Graph upstream as a long-running server (`npm run fake-upstream -- --dialect
// graph`): JSON batching (`POST /v1.0/$batch`, `/beta/$batch`), single calls and users, on FAKE_PORT,
// with one log line per call it answers (FAKE_LOG=0 turns the log off). A bearer token from
// FAKE_GRAPH_TOKENS acts for its user in the tenant `demo`.

import { type FakeGraphCall, startFakeGraph } from '../fake-graph/index.js';

const env = process.env;
/** `token:user,token:user`: the bearer tokens the fake accepts, and the user (`/me`) each acts for. */
const tokens = Object.fromEntries(
  (env.FAKE_GRAPH_TOKENS ?? 'graph_demo_token:alice').split(',').map((pair) => {
    const [token, user] = pair.split(':');
    if (!token || !user) throw new Error(`FAKE_GRAPH_TOKENS: expected token:user, got "${pair}"`);
    return [token, user];
  }),
);

/** The same line as the TalkJS fake's: time, call number, method, target, status, size, duration. */
function callLine(call: FakeGraphCall, at = new Date()): string {
  const n = call.requests;
  const size = n === undefined ? '' : ` (${n} request${n === 1 ? '' : 's'})`;
  return `${at.toISOString().slice(11, 23)} #${call.callId} ${call.method} ${call.target} → ${call.status}${size} ${call.ms.toFixed(1)} ms`;
}

const graph = await startFakeGraph({
  tenants: { demo: { tokens } },
  latencyMs: Number(env.FAKE_LATENCY_MS ?? 20),
  port: Number(env.FAKE_PORT ?? 8081),
  host: env.FAKE_HOST ?? '0.0.0.0',
  ...(env.FAKE_LOG === '0' ? {} : { onCall: (call: FakeGraphCall) => console.log(callLine(call)) }),
});
console.log(`fake Microsoft Graph upstream on ${graph.url} (tokens: ${Object.keys(tokens).join(', ')})`);

const stop = () => {
  void graph.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
