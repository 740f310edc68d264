import { describe, expect, it } from 'vitest';
import type { Method } from '../dialect/dialect.js';
import { pendingOp } from '../testing/pending-op.js';
import { backoffMs, DEFAULT_429_PAUSE_MS, mayRetry, pauseMs } from './retry.js';

describe('mayRetry', () => {
  const op = (method: Method, attempts: number, deadline = 1_000) => {
    const o = pendingOp({ seq: 0, method, path: '/users/u', deadline });
    o.attempts = attempts;
    return o;
  };

  it('retries only the methods that may run twice without harm', () => {
    const retried = (['GET', 'PUT', 'DELETE', 'POST', 'PATCH'] as const).filter((m) =>
      mayRetry(op(m, 1), 0, 3),
    );
    expect(retried).toEqual(['GET', 'PUT', 'DELETE']);
  });

  it('takes the dialect’s word over the method’s (a JSON-RPC call is a POST)', () => {
    const said = (method: Method, retrySafe: boolean) => {
      const o = pendingOp({ seq: 0, method, path: '/rpc', deadline: 1_000, retrySafe });
      o.attempts = 1;
      return mayRetry(o, 0, 3);
    };
    expect([said('POST', true), said('GET', false)]).toEqual([true, false]);
  });

  it('stops at the attempt limit', () => {
    expect([1, 2, 3, 4].map((attempts) => mayRetry(op('GET', attempts), 0, 3))).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('never retries at or after the deadline', () => {
    expect([998, 999, 1_000, 1_001].map((now) => mayRetry(op('PUT', 1, 1_000), now, 3))).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });
});

describe('backoffMs', () => {
  it('doubles from 50 ms per attempt, jittered between half and one and a half times', () => {
    expect([1, 2, 3, 4].map((attempt) => backoffMs(attempt, () => 0.5))).toEqual([50, 100, 200, 400]);
    expect(backoffMs(1, () => 0)).toBe(25);
    expect(backoffMs(3, () => 0)).toBe(100);
    expect(backoffMs(3, () => 0.99)).toBeCloseTo(298, 9);
  });
});

describe('pauseMs', () => {
  // A fixed "now" (2026-11-30T10:00:00Z); the header dates below are read against it.
  const now = Date.UTC(2026, 10, 30, 10, 0, 0);
  const cap = 60_000;

  it('reads Retry-After in seconds, fractions included', () => {
    expect(pauseMs('2', now, cap)).toBe(2_000);
    expect(pauseMs('0.05', now, cap)).toBe(50);
    expect(pauseMs(' 3 ', now, cap)).toBe(3_000);
  });

  it('reads Retry-After as an HTTP date against the given clock', () => {
    expect(pauseMs('Mon, 30 Nov 2026 10:00:07 GMT', now, cap)).toBe(7_000);
    // A date already past pauses for no time at all, not a negative time.
    expect(pauseMs('Mon, 30 Nov 2026 09:59:00 GMT', now, cap)).toBe(0);
  });

  it('takes the first of repeated headers', () => {
    expect(pauseMs(['3', '9'], now, cap)).toBe(3_000);
  });

  it('never pauses longer than the cap', () => {
    expect(pauseMs('86400', now, cap)).toBe(cap);
    expect(pauseMs('Tue, 01 Dec 2026 10:00:00 GMT', now, cap)).toBe(cap);
  });

  it('pauses for the default when the header is missing or unusable', () => {
    expect(DEFAULT_429_PAUSE_MS).toBe(1_000);
    for (const header of [undefined, '', '   ', 'soon', 'Infinity', []]) {
      expect(pauseMs(header, now, cap), JSON.stringify(header)).toBe(DEFAULT_429_PAUSE_MS);
    }
  });

  it('never reads a number of seconds as a date', () => {
    // Date.parse is lenient: it reads '-5' as May 2001 and '0' as 2000. A negative number of seconds
    // is not a pause (0 here, as a date in the past); '0' is no pause, whatever the clock says.
    expect(pauseMs('-5', now, cap)).toBe(0);
    expect(pauseMs('0', 0, Number.POSITIVE_INFINITY)).toBe(0);
  });
});

describe('mayRetry with a refunded attempt', () => {
  it('does not count the attempt of a batch now split', () => {
    const o = pendingOp({ seq: 0, method: 'GET', path: '/users/u', deadline: 1_000 });
    o.attempts = 3;
    expect([mayRetry(o, 0, 3), mayRetry(o, 0, 3, true), mayRetry(o, 0, 2, true)]).toEqual([
      false,
      true,
      false,
    ]);
  });
});
