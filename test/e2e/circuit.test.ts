// SPEC §8c "The upstream cannot freeze us", through the real process: an upstream that keeps failing
// opens the app's circuit breaker (CIRCUIT_BREAKER_FAILURES consecutive failed calls), its next calls
// are answered 503 + Retry-After at once without reaching the upstream, the breaker shows in
// /metrics and on the status page, and after CIRCUIT_BREAKER_OPEN_MS one probe that succeeds
// closes it again.

import { describe, expect, it } from 'vitest';
import { PROMPT_BATCHES } from '../harness/env.js';
import { metrics, series } from '../harness/metrics.js';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_circuit';
const { proxy, upstream } = useProxy(
  {
    ...PROMPT_BATCHES,
    UPSTREAM_MAX_ATTEMPTS: '1',
    CIRCUIT_BREAKER_FAILURES: '3',
    CIRCUIT_BREAKER_OPEN_MS: '1500',
    LOG_LEVEL: 'info',
  },
  { upstream: { apps: { app1: SECRET } } },
);

async function put(n: number): Promise<{ status: number; retryAfter: string | null; body: unknown }> {
  const res = await fetch(`${proxy.url}/v1/app1/users/u${n}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `user ${n}` }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

const metric = async (name: string) => series(await metrics(proxy), name);

describe('circuit breaker', () => {
  it('opens after consecutive upstream failures, fails fast, shows it, and closes after a good probe', async () => {
    expect(await metric('batch_proxy_circuit_open_apps')).toBe(0);
    upstream.faults.always = { status: 503 };
    // One at a time: each a failed upstream call of its own (UPSTREAM_MAX_ATTEMPTS=1: no retry).
    for (let n = 0; n < 3; n++) expect((await put(n)).status).toBe(502);
    const callsWhenOpened = upstream.stats.batchCalls;

    const refused = await put(10);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'PROXY_CIRCUIT_OPEN' } });
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(upstream.stats.batchCalls).toBe(callsWhenOpened);
    expect(await metric('batch_proxy_circuit_open_apps')).toBe(1);
    const status = (await fetch(`${proxy.adminUrl}/status.json`).then((r) => r.json())) as {
      apps: Array<{ appId: string; circuit: string }>;
      totals: { shed: { circuitOpen: number } };
    };
    expect(status.apps.find((a) => a.appId === 'app1')?.circuit).toBe('open');
    expect(status.totals.shed.circuitOpen).toBe(1);

    // The upstream recovers; after the open time a probe goes through and closes the breaker.
    upstream.faults.always = undefined;
    const deadline = Date.now() + 10_000;
    let answer = await put(20);
    while (answer.status === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Number(answer.retryAfter ?? 1) * 250));
      answer = await put(20);
    }
    expect(answer).toMatchObject({ status: 200, body: {} });
    expect(upstream.executed.map((e) => e.path)).toEqual(['/users/u20']);
    expect(await metric('batch_proxy_circuit_open_apps')).toBe(0);
    expect(proxy.logs()).toMatch(/circuit breaker open/);
  });
});
