// Open-loop load: calls leave at a fixed rate whatever the answers, as independent services send them,
// so the proxy's queueing shows up as latency instead of as a slower client.

export interface Call {
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly path: string;
  readonly body?: unknown;
}

export interface LoadOptions {
  /** Proxy base URLs; calls go round-robin, as behind a Service. */
  readonly targets: readonly string[];
  readonly appId: string;
  readonly authorization: string;
  readonly ratePerSec: number;
  readonly durationMs: number;
  /** Per-call bound: an answer later than this counts as a failure. */
  readonly timeoutMs: number;
  readonly call: (i: number) => Call;
  /** Updated as calls leave and come back, for a progress line. */
  readonly live: LiveCounters;
}

export interface LiveCounters {
  sent: number;
  answered: number;
}

export interface LoadResult {
  readonly sent: number;
  /** Answered with 2xx. */
  readonly ok: number;
  /** Answers the proxy made itself to shed load (429 queue full, 503 deadline: `PROXY_*` codes). */
  readonly shed: number;
  /** Status (0 for a network error or timeout) -> count, for everything else that was not 2xx. */
  readonly failures: Map<number, number>;
  readonly latenciesMs: number[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const count = Math.max(1, Math.round((o.ratePerSec * o.durationMs) / 1000));
  const gapMs = 1000 / o.ratePerSec;
  const latenciesMs: number[] = [];
  const failures = new Map<number, number>();
  let ok = 0;
  let shed = 0;
  const fail = (status: number) => failures.set(status, (failures.get(status) ?? 0) + 1);

  const one = async (i: number): Promise<void> => {
    const call = o.call(i);
    const target = o.targets[i % o.targets.length];
    const started = performance.now();
    try {
      const res = await fetch(`${target}/v1/${o.appId}${call.path}`, {
        method: call.method,
        headers: {
          authorization: o.authorization,
          ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      const text = await res.text();
      latenciesMs.push(performance.now() - started);
      if (res.status >= 200 && res.status < 300) ok++;
      else if (isShed(res.status, text)) shed++;
      else fail(res.status);
    } catch {
      fail(0);
    } finally {
      o.live.answered++;
    }
  };

  const inflight: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    // Sleep to each call's own due time, so timer drift does not lower the rate.
    const due = start + i * gapMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    o.live.sent++;
    inflight.push(one(i));
  }
  await Promise.all(inflight);
  return { sent: count, ok, shed, failures, latenciesMs };
}

/** A 429/503 the proxy made itself (its error codes), as opposed to one the upstream answered. */
function isShed(status: number, text: string): boolean {
  if (status !== 429 && status !== 503) return false;
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return code === 'PROXY_QUEUE_FULL' || code === 'PROXY_DEADLINE_EXCEEDED';
  } catch {
    return false;
  }
}
