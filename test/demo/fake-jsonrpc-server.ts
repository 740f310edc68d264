// The fake JSON-RPC 2.0 upstream as a long-running server (`npm run fake-upstream -- --dialect
// jsonrpc`): single calls and batches on any path, on FAKE_PORT, with one log line per call it answers
// (FAKE_LOG=0 turns the log off). Bearer tokens from FAKE_JSONRPC_TOKENS; at most FAKE_JSONRPC_MAX_BATCH
// entries per batch; methods echo, eth_blockNumber, counter_get, counter_add (a write), test_badResult.

import { type FakeJsonRpcCall, startFakeJsonRpc } from '../fake-jsonrpc/index.js';

const env = process.env;
const tokens = (env.FAKE_JSONRPC_TOKENS ?? 'jsonrpc_demo_token').split(',').filter((t) => t !== '');

/** The same line as the other fakes': time, call number, method, target, status, size, duration. */
function callLine(call: FakeJsonRpcCall, at = new Date()): string {
  const n = call.size;
  const size = n === undefined ? '' : ` (${n} entr${n === 1 ? 'y' : 'ies'})`;
  return `${at.toISOString().slice(11, 23)} #${call.callId} ${call.method} ${call.target} → ${call.status}${size} ${call.ms.toFixed(1)} ms`;
}

const fake = await startFakeJsonRpc({
  tokens,
  maxBatch: Number(env.FAKE_JSONRPC_MAX_BATCH ?? 100),
  latencyMs: Number(env.FAKE_LATENCY_MS ?? 20),
  port: Number(env.FAKE_PORT ?? 8081),
  host: env.FAKE_HOST ?? '0.0.0.0',
  ...(env.FAKE_LOG === '0' ? {} : { onCall: (call: FakeJsonRpcCall) => console.log(callLine(call)) }),
});
console.log(`fake JSON-RPC 2.0 upstream on ${fake.url} (tokens: ${tokens.join(', ')})`);

const stop = () => {
  void fake.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
