import { describe, expect, it } from 'vitest';
import { ProxyError } from './errors.js';

describe('ProxyError', () => {
  it('carries its code, status, message, cause and retry hint', () => {
    const cause = new Error('socket hang up');
    const e = new ProxyError('PROXY_UPSTREAM_UNAVAILABLE', 'the upstream call failed', {
      cause,
      retryAfterSec: 3,
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ProxyError');
    expect([e.code, e.status, e.message, e.retryAfterSec]).toEqual([
      'PROXY_UPSTREAM_UNAVAILABLE',
      502,
      'the upstream call failed',
      3,
    ]);
    expect(e.cause).toBe(cause);
    expect(Object.hasOwn(new ProxyError('PROXY_BAD_REQUEST', 'x'), 'cause')).toBe(false);
  });

  it('is retryable with a retry hint or from 502 up, not otherwise', () => {
    expect(new ProxyError('PROXY_BAD_REQUEST', 'x').retryable).toBe(false); // 400
    expect(new ProxyError('PROXY_UNAUTHORIZED', 'x').retryable).toBe(false); // 401
    expect(new ProxyError('PROXY_INTERNAL', 'x').retryable).toBe(false); // 500
    expect(new ProxyError('PROXY_QUEUE_FULL', 'x', { retryAfterSec: 1 }).retryable).toBe(true); // 429
    expect(new ProxyError('PROXY_UPSTREAM_BAD_RESPONSE', 'x').retryable).toBe(true); // 502
    expect(new ProxyError('PROXY_UPSTREAM_TIMEOUT', 'x').retryable).toBe(true); // 504
  });

  it('renders the JSON error body, with the request id when there is one', () => {
    const e = new ProxyError('PROXY_QUEUE_FULL', 'the queue is full');
    expect(e.toJSON()).toEqual({ error: { code: 'PROXY_QUEUE_FULL', message: 'the queue is full' } });
    expect(e.toJSON('req-1')).toEqual({
      error: { code: 'PROXY_QUEUE_FULL', message: 'the queue is full', requestId: 'req-1' },
    });
    expect(e.toJSON('')).toEqual({ error: { code: 'PROXY_QUEUE_FULL', message: 'the queue is full' } });
  });
});
