// The engine's events to several observers (the metrics and the status page), in order.

import type { SchedulerObserver } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import { combineObservers } from './observers.js';

describe('combineObservers', () => {
  it('passes every event to both observers, first one first', () => {
    const calls: string[] = [];
    const a: SchedulerObserver = {
      onFlush: (e) => calls.push(`a flush ${e.size}`),
      onAnswer: (e) => calls.push(`a answer ${e.status}`),
    };
    const b: SchedulerObserver = {
      onFlush: (e) => calls.push(`b flush ${e.size}`),
      onShed: (e) => calls.push(`b shed ${e.code}`),
    };
    const both = combineObservers(a, b);
    both.onFlush({ appId: 'x', lane: 'batch', size: 3, reason: 'full' });
    both.onAnswer({ appId: 'x', lane: 'batch', status: 200, queueMs: 1 });
    both.onShed({ appId: 'x', code: 'PROXY_QUEUE_FULL' });
    both.onCollapsed({ appId: 'x' });
    expect(calls).toEqual(['a flush 3', 'b flush 3', 'a answer 200', 'b shed PROXY_QUEUE_FULL']);
  });
});
