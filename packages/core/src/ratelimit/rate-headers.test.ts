import { describe, expect, it } from 'vitest';
import { combine, readRateHeaders, SALESFORCE_WINDOW_MS } from './rate-headers.js';

const NOW = 1_765_000_000_000; // epoch ms, December 2025
const auto = (h: Record<string, string | string[]>) => readRateHeaders(h, 'auto', NOW);

describe('IETF draft, structured fields', () => {
  it('reads remaining and reset from RateLimit, quota and window from its policy', () => {
    expect(auto({ ratelimit: '"default";r=50;t=30', 'ratelimit-policy': '"default";q=100;w=60' })).toEqual({
      remaining: 50,
      limit: 100,
      resetInMs: 30_000,
      windowMs: 60_000,
    });
  });
  it('reads RateLimit without a policy', () => {
    expect(auto({ ratelimit: '"default";r=5;t=1' })).toEqual({ remaining: 5, resetInMs: 1000 });
  });
  it('takes the tightest of several policies, each matched by name', () => {
    const h = {
      ratelimit: '"burst";r=3;t=1, "day";r=900;t=3600',
      'ratelimit-policy': '"burst";q=10;w=1, "day";q=1000;w=86400',
    };
    expect(auto(h)).toEqual({ remaining: 3, limit: 10, resetInMs: 3_600_000, windowMs: 86_400_000 });
  });
  it('reads a token-named policy and skips an item with no remaining', () => {
    expect(auto({ ratelimit: 'foo;t=9, "x";r=7;t=2' })).toEqual({ remaining: 7, resetInMs: 2000 });
  });
  it('reads the older dictionary form', () => {
    expect(auto({ ratelimit: 'limit=100, remaining=40, reset=20' })).toEqual({
      remaining: 40,
      limit: 100,
      resetInMs: 20_000,
    });
  });
  it('reads the older triplet, the limit as the first member of a list', () => {
    expect(
      auto({ 'ratelimit-limit': '100, 100;w=60', 'ratelimit-remaining': '7', 'ratelimit-reset': '12' }),
    ).toEqual({ remaining: 7, limit: 100, resetInMs: 12_000 });
  });
  it('ignores a triplet with no remaining', () => {
    expect(auto({ 'ratelimit-limit': '100', 'ratelimit-reset': '12' })).toBeUndefined();
  });
  it('keeps quoted separators inside a policy name', () => {
    expect(auto({ ratelimit: '"a,b;c";r=4;t=3', 'ratelimit-policy': '"a,b;c";q=9' })).toEqual({
      remaining: 4,
      limit: 9,
      resetInMs: 3000,
    });
  });
  it('ignores malformed members', () => {
    expect(auto({ ratelimit: '"default";r=abc;t=1' })).toBeUndefined();
    expect(auto({ ratelimit: '"default";r=-5;t=1' })).toBeUndefined();
    expect(auto({ ratelimit: '"default";r=1.5;t=1' })).toBeUndefined();
    expect(auto({ ratelimit: '@@@' })).toBeUndefined();
    expect(auto({ ratelimit: 'limit=100, reset=20' })).toBeUndefined();
    expect(auto({ ratelimit: 'remaining=x' })).toBeUndefined();
    expect(auto({ ratelimit: '' })).toBeUndefined();
  });
  it('leaves out a malformed reset or quota but keeps the count', () => {
    expect(auto({ ratelimit: '"d";r=5;t=-1', 'ratelimit-policy': '"d";q=x;w=2' })).toEqual({
      remaining: 5,
      windowMs: 2000,
    });
  });
});

describe('X-RateLimit', () => {
  it('reads a reset of at least 1e9 as epoch seconds (GitHub)', () => {
    const h = {
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '4999',
      'x-ratelimit-reset': `${NOW / 1000 + 60}`,
    };
    expect(auto(h)).toEqual({ remaining: 4999, limit: 5000, resetInMs: 60_000 });
  });
  it('reads a reset below 1e9 as delta seconds', () => {
    expect(auto({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '999999999' })).toEqual({
      remaining: 3,
      resetInMs: 999_999_999_000,
    });
    expect(
      readRateHeaders(
        { 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '1000000000' },
        'auto',
        1_000_000_500,
      ),
    ).toEqual({
      remaining: 3,
      resetInMs: 998_999_999_500,
    });
  });
  it('reads a reset of at least 1e12 as epoch milliseconds', () => {
    expect(auto({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': `${NOW + 1500}` })).toEqual({
      remaining: 3,
      resetInMs: 1500,
    });
    expect(
      readRateHeaders(
        { 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '1000000000000' },
        'auto',
        999_999_999_000,
      ),
    ).toEqual({
      remaining: 3,
      resetInMs: 1000,
    });
  });
  it('reads a reset in the past as now', () => {
    expect(auto({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': `${NOW / 1000 - 5}` })).toEqual({
      remaining: 0,
      resetInMs: 0,
    });
    expect(auto({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': `${NOW - 5}` })).toEqual({
      remaining: 0,
      resetInMs: 0,
    });
  });
  it('caps a remaining above its own limit at the limit', () => {
    expect(auto({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '50' })).toEqual({
      remaining: 10,
      limit: 10,
    });
  });
  it('reads a limit of 0', () => {
    expect(
      auto({ 'x-ratelimit-limit': '0', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '5' }),
    ).toEqual({
      remaining: 0,
      limit: 0,
      resetInMs: 5000,
    });
  });
  it('ignores huge and negative numbers', () => {
    expect(auto({ 'x-ratelimit-remaining': '1000000000001' })).toBeUndefined();
    expect(auto({ 'x-ratelimit-remaining': '1000000000000' })).toEqual({ remaining: 1e12 });
    expect(auto({ 'x-ratelimit-remaining': '99999999999999999999999' })).toBeUndefined();
    expect(auto({ 'x-ratelimit-remaining': '-1' })).toBeUndefined();
    expect(
      auto({ 'x-ratelimit-remaining': '5', 'x-ratelimit-limit': '-1', 'x-ratelimit-reset': '-3' }),
    ).toEqual({
      remaining: 5,
    });
  });
  it('tolerates surrounding whitespace but not trailing text', () => {
    expect(auto({ 'x-ratelimit-remaining': ' 5 ' })).toEqual({ remaining: 5 });
    expect(auto({ 'x-ratelimit-remaining': '5 calls' })).toBeUndefined();
  });
  it('joins a repeated header, which is then no count', () => {
    expect(auto({ 'x-ratelimit-remaining': ['5', '6'] })).toBeUndefined();
  });
  it('reads HubSpot: a window, no reset', () => {
    const h = {
      'x-hubspot-ratelimit-max': '100',
      'x-hubspot-ratelimit-remaining': '80',
      'x-hubspot-ratelimit-interval-milliseconds': '10000',
    };
    expect(auto(h)).toEqual({ remaining: 80, limit: 100, windowMs: 10_000 });
    expect(auto({ ...h, 'x-hubspot-ratelimit-interval-milliseconds': '0' })).toEqual({
      remaining: 80,
      limit: 100,
    });
  });
});

describe('Salesforce', () => {
  it('reads used/allowed as what remains of a rolling day', () => {
    expect(auto({ 'sforce-limit-info': 'api-usage=10018/100000' })).toEqual({
      remaining: 89_982,
      limit: 100_000,
      windowMs: SALESFORCE_WINDOW_MS,
    });
    expect(SALESFORCE_WINDOW_MS).toBe(86_400_000);
  });
  it('reads it among other figures, and usage past the limit as none left', () => {
    expect(auto({ 'sforce-limit-info': 'per-app-api-usage=1/5, api-usage=120/100' })).toEqual({
      remaining: 0,
      limit: 100,
      windowMs: SALESFORCE_WINDOW_MS,
    });
  });
  it('ignores malformed usage', () => {
    expect(auto({ 'sforce-limit-info': 'api-usage=10/' })).toBeUndefined();
    expect(auto({ 'sforce-limit-info': 'api-usage=-1/100' })).toBeUndefined();
    expect(auto({ 'sforce-limit-info': 'xapi-usage=1/100' })).toBeUndefined();
    expect(auto({ 'sforce-limit-info': 'api-usage=1/100x' })).toBeUndefined();
  });
});

describe('Graph', () => {
  it('reads the share of a limit used', () => {
    expect(auto({ 'x-ms-throttle-limit-percentage': '0.8' })).toEqual({ usage: 0.8 });
    expect(auto({ 'x-ms-throttle-limit-percentage': '1.8' })).toEqual({ usage: 1.8 });
  });
  it('reads a whole percentage as a share', () => {
    expect(auto({ 'x-ms-throttle-limit-percentage': '85' })).toEqual({ usage: 0.85 });
    expect(auto({ 'x-ms-throttle-limit-percentage': '10' })).toEqual({ usage: 10 });
    expect(auto({ 'x-ms-throttle-limit-percentage': '11' })).toEqual({ usage: 0.11 });
  });
  it('ignores malformed, zero and absurd values', () => {
    expect(auto({ 'x-ms-throttle-limit-percentage': 'high' })).toBeUndefined();
    expect(auto({ 'x-ms-throttle-limit-percentage': '-0.9' })).toBeUndefined();
    expect(auto({ 'x-ms-throttle-limit-percentage': '0' })).toBeUndefined();
    expect(auto({ 'x-ms-throttle-limit-percentage': '5000' })).toBeUndefined();
  });
});

describe('modes', () => {
  const all = {
    ratelimit: '"d";r=50;t=30',
    'x-ratelimit-remaining': '40',
    'x-ratelimit-reset': '10',
    'sforce-limit-info': 'api-usage=10/100',
    'x-ms-throttle-limit-percentage': '0.9',
  };
  it('reads one style only when named', () => {
    expect(readRateHeaders(all, 'ietf', NOW)).toEqual({ remaining: 50, resetInMs: 30_000 });
    expect(readRateHeaders(all, 'x-ratelimit', NOW)).toEqual({ remaining: 40, resetInMs: 10_000 });
    expect(readRateHeaders(all, 'salesforce', NOW)).toEqual({
      remaining: 90,
      limit: 100,
      windowMs: SALESFORCE_WINDOW_MS,
    });
    expect(readRateHeaders(all, 'graph', NOW)).toEqual({ usage: 0.9 });
    expect(readRateHeaders(all, 'off', NOW)).toBeUndefined();
  });
  it('auto: the most conservative of all the styles sent', () => {
    expect(readRateHeaders(all, 'auto', NOW)).toEqual({
      remaining: 40,
      limit: 100,
      resetInMs: SALESFORCE_WINDOW_MS,
      windowMs: SALESFORCE_WINDOW_MS,
      usage: 0.9,
    });
  });
  it('auto with two styles disagreeing takes the least remaining and the furthest reset', () => {
    const h = { ratelimit: '"d";r=5;t=3', 'x-ratelimit-remaining': '9', 'x-ratelimit-reset': '8' };
    expect(readRateHeaders(h, 'auto', NOW)).toEqual({ remaining: 5, resetInMs: 8000 });
  });
  it('absent: nothing', () => {
    expect(readRateHeaders({}, 'auto', NOW)).toBeUndefined();
    expect(readRateHeaders({ 'content-type': 'application/json' }, 'ietf', NOW)).toBeUndefined();
  });
});

describe('combine', () => {
  it('is the one reading when only one is present', () => {
    expect(combine([undefined, { remaining: 3 }])).toEqual({ remaining: 3 });
    expect(combine([])).toBeUndefined();
  });
  it('reads a hint alone beside a count without inventing a reset', () => {
    expect(combine([{ usage: 1.2 }, { remaining: 3, resetInMs: 1000 }])).toEqual({
      remaining: 3,
      resetInMs: 1000,
      usage: 1.2,
    });
    expect(combine([{ usage: 1.2, windowMs: 5 }, { remaining: 3 }])).toEqual({
      remaining: 3,
      windowMs: 5,
      usage: 1.2,
    });
  });
});
