// The fake Salesforce org as a long-running server (`npm run fake-upstream -- --dialect
// salesforce-composite`): the Composite resource (`POST /services/data/vXX.X/composite`), single sObject
// and query calls, and the org's API request limit, on FAKE_PORT, with one log line per call it answers
// (FAKE_LOG=0 turns the log off). FAKE_SALESFORCE_TOKENS lists the accepted bearer tokens;
// FAKE_SALESFORCE_API_LIMIT the calls allowed per rolling 24 h (each answer's Sforce-Limit-Info says how
// many are used).

import { type FakeSalesforceCall, startFakeSalesforce } from '../fake-salesforce/index.js';

const env = process.env;
const tokens = (env.FAKE_SALESFORCE_TOKENS ?? 'salesforce_demo_token').split(',').filter(Boolean);
const limit = Number(env.FAKE_SALESFORCE_API_LIMIT ?? 15_000);
if (!Number.isInteger(limit) || limit < 1)
  throw new Error(`FAKE_SALESFORCE_API_LIMIT: expected a positive integer`);

/** The same line as the other fakes': time, call number, method, target, status, size, duration. */
function callLine(call: FakeSalesforceCall, at = new Date()): string {
  const n = call.subrequests;
  const size = n === undefined ? '' : ` (${n} subrequest${n === 1 ? '' : 's'})`;
  return `${at.toISOString().slice(11, 23)} #${call.callId} ${call.method} ${call.target} → ${call.status}${size} ${call.ms.toFixed(1)} ms`;
}

const org = await startFakeSalesforce({
  tokens,
  apiLimit: { limit, windowMs: 24 * 60 * 60 * 1000 },
  latencyMs: Number(env.FAKE_LATENCY_MS ?? 20),
  port: Number(env.FAKE_PORT ?? 8081),
  host: env.FAKE_HOST ?? '0.0.0.0',
  ...(env.FAKE_LOG === '0' ? {} : { onCall: (call: FakeSalesforceCall) => console.log(callLine(call)) }),
});
console.log(`fake Salesforce org on ${org.url} (tokens: ${tokens.join(', ')}; API limit ${limit}/24 h)`);

const stop = () => {
  void org.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
