// Proxy environments several suites start from, named for what they do to the proxy.

/** Batches leave 1 ms after their first op, and the proxy's own pacing never holds one back. */
export const PROMPT_BATCHES: Record<string, string> = {
  BATCH_WINDOW_MS: '1',
  BATCH_RATE_PER_SEC: '1000',
  BATCH_BURST: '1000',
};

/** Limits so high no call ever waits for a token: every call goes straight on to the upstream. */
export const NO_PACING: Record<string, string> = {
  REST_RATE_PER_SEC: '100000',
  REST_BURST: '100000',
  BATCH_RATE_PER_SEC: '100000',
  BATCH_BURST: '100000',
};
