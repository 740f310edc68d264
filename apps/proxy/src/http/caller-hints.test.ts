import { describe, expect, it } from 'vitest';
import { ignoredTiming, MAX_WAIT_HEADER, maxWaitHint } from './caller-hints.js';

describe('maxWaitHint', () => {
  it('is none without the header', () => {
    expect(maxWaitHint({})).toEqual({ kind: 'none' });
  });

  it.each([
    ['0', 0],
    ['250', 250],
    [' 40 ', 40],
    ['999999999', 999_999_999],
  ])('reads %j as %d ms', (value, ms) => {
    expect(maxWaitHint({ [MAX_WAIT_HEADER]: value })).toEqual({ kind: 'ms', ms });
  });

  it.each(['', '-1', '1.5', '1e3', 'abc', '0x10', '1000000000', '12 ms'])('ignores %j', (value) => {
    expect(maxWaitHint({ [MAX_WAIT_HEADER]: value })).toEqual({ kind: 'ignored', header: MAX_WAIT_HEADER });
  });

  it('ignores a repeated header', () => {
    expect(maxWaitHint({ [MAX_WAIT_HEADER]: ['10', '20'] as unknown as string })).toEqual({
      kind: 'ignored',
      header: MAX_WAIT_HEADER,
    });
  });

  it('names the ignored header in Server-Timing syntax', () => {
    expect(ignoredTiming(MAX_WAIT_HEADER)).toBe('ignored;desc="x-batch-max-wait-ms"');
  });
});
