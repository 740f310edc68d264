import { describe, expect, it } from 'vitest';
import { quotaHeaders, WindowQuota } from './window-quota.js';

describe('WindowQuota', () => {
  it('admits the limit per window, then refuses until the next window', () => {
    const q = new WindowQuota({ limit: 2, windowMs: 1000, style: 'ietf' });
    expect([q.take('a', 0), q.take('a', 10), q.take('a', 999)]).toEqual([true, true, false]);
    expect(q.figures('a', 999)).toEqual({ limit: 2, used: 2, remaining: 0, resetInMs: 1 });
    expect(q.take('a', 1000)).toBe(true);
    expect(q.take('b', 1000)).toBe(true);
    expect(q.figures('a', 1250)).toEqual({ limit: 2, used: 1, remaining: 1, resetInMs: 750 });
  });
  it('changes the limit from the next window on', () => {
    const q = new WindowQuota({ limit: 2, windowMs: 1000, style: 'ietf' });
    q.take('a', 0);
    q.setLimit(1);
    expect(q.take('a', 500)).toBe(true);
    expect(q.take('a', 1000)).toBe(true);
    expect(q.take('a', 1001)).toBe(false);
  });
  it('refuses bad options', () => {
    expect(() => new WindowQuota({ limit: -1, windowMs: 1000, style: 'ietf' })).toThrow(TypeError);
    expect(() => new WindowQuota({ limit: 1, windowMs: 0, style: 'ietf' })).toThrow(TypeError);
  });
});

describe('quotaHeaders', () => {
  const f = { limit: 100, used: 85, remaining: 15, resetInMs: 1200 };
  it('sends each style, resets rounded up to whole seconds', () => {
    expect(quotaHeaders('ietf', f, 0)).toEqual({
      ratelimit: '"default";r=15;t=2',
      'ratelimit-policy': '"default";q=100;w=2',
    });
    expect(quotaHeaders('ietf-triplet', f, 0)).toEqual({
      'ratelimit-limit': '100',
      'ratelimit-remaining': '15',
      'ratelimit-reset': '2',
    });
    expect(quotaHeaders('x-ratelimit', f, 1_765_000_000_000)['x-ratelimit-reset']).toBe('1765000002');
    expect(quotaHeaders('salesforce', f, 0)).toEqual({ 'sforce-limit-info': 'api-usage=85/100' });
    expect(quotaHeaders('graph', f, 0)).toEqual({ 'x-ms-throttle-limit-percentage': '0.85' });
  });
  it("sends Graph's hint only from 80 % used, at most 1.8", () => {
    expect(quotaHeaders('graph', { ...f, used: 79 }, 0)).toEqual({});
    expect(quotaHeaders('graph', { ...f, used: 80 }, 0)).toEqual({
      'x-ms-throttle-limit-percentage': '0.80',
    });
    expect(quotaHeaders('graph', { ...f, used: 500 }, 0)).toEqual({
      'x-ms-throttle-limit-percentage': '1.80',
    });
  });
});
