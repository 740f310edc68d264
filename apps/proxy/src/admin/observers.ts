// The engine reports through one SchedulerObserver; the edge has several listeners (metrics, the
// status page). They are combined here once, generically, instead of each hook being forwarded by hand.

import type { SchedulerObserver } from '@batch-proxy/core';

type Hook = keyof SchedulerObserver;

/** Every hook of SchedulerObserver. Adding a hook there without listing it here fails to compile. */
const HOOKS = [
  'onFlush',
  'onUpstream',
  'onAnswer',
  'onCollapsed',
  'onShed',
  'onLimiter',
  'onRequeue',
  'onRateHeaders',
] as const satisfies readonly Hook[];
type Unlisted = Exclude<Hook, (typeof HOOKS)[number]>;
const everyHookListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyHookListed;

/** One observer that passes every event to each of `observers`, in order. */
export function combineObservers(...observers: readonly SchedulerObserver[]): Required<SchedulerObserver> {
  const combined: Partial<Record<Hook, (event: never) => void>> = {};
  for (const hook of HOOKS) {
    const listeners = observers.flatMap((o) => {
      const listener = o[hook] as ((event: never) => void) | undefined;
      return listener ? [listener.bind(o)] : [];
    });
    combined[hook] = (event: never) => {
      for (const listener of listeners) listener(event);
    };
  }
  return combined as Required<SchedulerObserver>;
}
