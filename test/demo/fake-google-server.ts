// The fake Google API upstream as a long-running server (`npm run fake-upstream -- --dialect
// google-batch`): batching (`POST /batch/{api}/{version}`, multipart/mixed) and single calls
// `/{api}/{version}/…` on FAKE_PORT, with one log line per call it answers (FAKE_LOG=0 turns the log
// off). A bearer token from FAKE_GOOGLE_TOKENS acts for its user (`users/me`).

import { startFakeGoogle } from '../fake-google/index.js';

const env = process.env;
/** `token:user,token:user`: the bearer tokens the fake accepts, and the user each acts for. */
const tokens = Object.fromEntries(
  (env.FAKE_GOOGLE_TOKENS ?? 'google_demo_token:alice').split(',').map((pair) => {
    const [token, user] = pair.split(':');
    if (!token || !user) throw new Error(`FAKE_GOOGLE_TOKENS: expected token:user, got "${pair}"`);
    return [token, user];
  }),
);

interface Call {
  callId: number;
  method: string;
  target: string;
  status: number;
  size?: number;
  ms: number;
}

/** The same line as the other fakes': time, call number, method, target, status, size, duration. */
function callLine(call: Call, at = new Date()): string {
  const n = call.size;
  const size = n === undefined ? '' : ` (${n} part${n === 1 ? '' : 's'})`;
  return `${at.toISOString().slice(11, 23)} #${call.callId} ${call.method} ${call.target} → ${call.status}${size} ${call.ms.toFixed(1)} ms`;
}

const google = await startFakeGoogle({
  tokens,
  latencyMs: Number(env.FAKE_LATENCY_MS ?? 20),
  port: Number(env.FAKE_PORT ?? 8081),
  host: env.FAKE_HOST ?? '0.0.0.0',
  ...(env.FAKE_LOG === '0' ? {} : { onCall: (call: Call) => console.log(callLine(call)) }),
});
console.log(`fake Google API upstream on ${google.url} (tokens: ${Object.keys(tokens).join(', ')})`);

const stop = () => {
  void google.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
