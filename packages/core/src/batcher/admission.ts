// Calls that bypass the queue (pass-through, a client's own batch call) still spend the app's budgets
// and wait out their group's pause (SPEC §7b, §8d): one token each, asked for on the budget's own
// "when may I ask again?", until the caller's deadline.

import type { ProxyError } from '../errors.js';
import { callerGone, deadlineError } from './answer.js';
import type { AppEngine } from './app-engine.js';
import type { BudgetName } from './budget.js';
import { sleep } from './clock.js';
import type { SchedulerConfig } from './config.js';
import type { FailureDomains } from './domains.js';

/** A call let through: call `done` once it is answered (the token's lease is released). */
export type Admitted = () => void;

export interface Admission {
  readonly config: Pick<SchedulerConfig, 'clock' | 'maxWaitMs' | 'observer'>;
  readonly domains: FailureDomains;
}

/**
 * Waits for a token of `app`'s `bucket` for a call that bypasses the queue. Resolves with the
 * function to call once the call is answered, or with the error to answer when no token comes before
 * the deadline, the app is refused as a whole, or the caller goes away.
 */
export async function admit(
  { config, domains }: Admission,
  app: AppEngine,
  bucket: BudgetName,
  signal: AbortSignal | undefined,
  credential: string | undefined,
  maxWaitMs: number = config.maxWaitMs,
): Promise<Admitted | ProxyError> {
  const { clock, observer } = config;
  // The caller's scope's budget (its tenant's, once the upstream accepted it: scopes.ts).
  const budget = app.budget(bucket, credential);
  const started = clock.now();
  const pauseOver = () => waitPause({ config, domains }, app.appId, credential, started, signal, maxWaitMs);
  if (!budget) return (await pauseOver()) ?? (() => {});
  // Calls that bypass the queue carry no group here: only the app open as a whole refuses them.
  const circuit = app.circuitOpen(started, undefined);
  if (circuit) return circuit;
  const deadline = started + maxWaitMs;
  for (;;) {
    const paused = await pauseOver();
    if (paused) return paused;
    const decision = await budget.acquire({ waitedMs: clock.now() - started });
    if (decision.granted) return () => void budget.settle(decision, app.waiting());
    const now = clock.now();
    // At the deadline, or a wait past it: answered now. A denial of 0 ms (a turn) is asked again
    // one poll on, which never sleeps past the deadline.
    if (now >= deadline || now + decision.retryAfterMs > deadline) {
      observer?.onShed?.({ appId: app.appId, code: 'PROXY_DEADLINE_EXCEEDED' });
      return deadlineError(decision.retryAfterMs);
    }
    const again = Math.min(budget.askAgainAt(now, true) ?? now, deadline);
    if (!(await sleep(clock, again - now, signal))) return callerGone();
  }
}

/**
 * SPEC §8d: a call of a throttled group (its credential paused by a 429) waits out the pause —
 * undefined once over — or gets the error to answer: the pause outlasts its deadline, or it left.
 */
async function waitPause(
  { config, domains }: Admission,
  appId: string,
  credential: string | undefined,
  started: number,
  signal: AbortSignal | undefined,
  maxWaitMs: number,
): Promise<ProxyError | undefined> {
  const { clock, observer } = config;
  for (;;) {
    if (signal?.aborted) return callerGone();
    const now = clock.now();
    const paused = credential === undefined ? 0 : domains.pausedUntil(appId, credential, now);
    if (paused <= now) return undefined;
    if (paused > started + maxWaitMs) {
      observer?.onShed?.({ appId, code: 'PROXY_DEADLINE_EXCEEDED' });
      return deadlineError(paused - now);
    }
    if (!(await sleep(clock, paused - now, signal))) return callerGone();
  }
}
