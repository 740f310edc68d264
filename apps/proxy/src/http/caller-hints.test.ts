import { describe, expect, it, vi } from 'vitest';
import { ignoredTiming, MAX_WAIT_HEADER, PRIORITY_HEADER, readHints } from './caller-hints.js';
import { type PriorityRules, parsePriorityRules } from './priority-rules.js';

const read = (headers: Record<string, string | string[]>, rules?: PriorityRules) =>
  readHints(headers, 'GET', '/v1/a/users/u1', rules);

describe('readHints: x-batch-max-wait-ms', () => {
  it('is nothing without the header', () => {
    expect(read({})).toEqual({ maxWaitMs: undefined, priority: undefined, ignored: undefined });
  });

  it.each([
    ['0', 0],
    ['250', 250],
    [' 40 ', 40],
    ['999999999', 999_999_999],
  ])('reads %j as %d ms', (value, ms) => {
    expect(read({ [MAX_WAIT_HEADER]: value })).toMatchObject({ maxWaitMs: ms, ignored: undefined });
  });

  it.each(['', '-1', '1.5', '1e3', 'abc', '0x10', '1000000000', '12 ms'])('ignores %j', (value) => {
    expect(read({ [MAX_WAIT_HEADER]: value })).toEqual({
      maxWaitMs: undefined,
      priority: undefined,
      ignored: [MAX_WAIT_HEADER],
    });
  });

  it('ignores a repeated header', () => {
    expect(read({ [MAX_WAIT_HEADER]: ['10', '20'] }).ignored).toEqual([MAX_WAIT_HEADER]);
    expect(read({ [PRIORITY_HEADER]: ['high', 'low'] })).toMatchObject({
      priority: undefined,
      ignored: [PRIORITY_HEADER],
    });
  });

  it('reads the names and the pattern of a fresh load of the module', async () => {
    // Module-level constants are made when the module loads: loaded again inside the test, so that a
    // mutation run (which switches a planted bug on per test, after the first load) sees its change.
    vi.resetModules();
    const fresh = await import('./caller-hints.js');
    expect(fresh.HINT_HEADERS).toEqual(['x-batch-max-wait-ms', 'x-batch-priority']);
    const hints = (headers: Record<string, string>) => fresh.readHints(headers, 'GET', '/v1/a/users/u1');
    expect(hints({ 'x-batch-max-wait-ms': '123456789' }).maxWaitMs).toBe(123_456_789);
    expect(hints({ 'x-batch-priority': 'low' }).priority).toBe('low');
    for (const value of ['-1', '1-', '12a', 'a12', '1234567890', 'x'])
      expect(hints({ 'x-batch-max-wait-ms': value }), value).toMatchObject({
        maxWaitMs: undefined,
        ignored: ['x-batch-max-wait-ms'],
      });
  });
});

describe('readHints: x-batch-priority', () => {
  it.each([
    ['high', 'high'],
    ['normal', 'normal'],
    ['low', 'low'],
    [' HIGH ', 'high'],
    ['Low', 'low'],
  ])('reads %j as %s', (value, priority) => {
    expect(read({ [PRIORITY_HEADER]: value })).toMatchObject({ priority, ignored: undefined });
  });

  it.each(['', 'urgent', '1', 'high,low'])('ignores %j, and the rules decide', (value) => {
    const rules = parsePriorityRules('low GET /v1/*/users/*') as PriorityRules;
    expect(read({ [PRIORITY_HEADER]: value })).toMatchObject({
      priority: undefined,
      ignored: [PRIORITY_HEADER],
    });
    expect(read({ [PRIORITY_HEADER]: value }, rules)).toMatchObject({
      priority: 'low',
      ignored: [PRIORITY_HEADER],
    });
  });

  it("takes the caller's own priority over the operator's rules", () => {
    const rules = parsePriorityRules('low GET /v1/*/users/*') as PriorityRules;
    expect(read({ [PRIORITY_HEADER]: 'high' }, rules).priority).toBe('high');
    expect(read({}, rules).priority).toBe('low');
  });

  it('names every ignored hint, each once, in Server-Timing syntax', () => {
    const hints = read({ [PRIORITY_HEADER]: 'asap', [MAX_WAIT_HEADER]: 'soon' });
    expect(hints.ignored).toEqual([MAX_WAIT_HEADER, PRIORITY_HEADER]);
    expect(ignoredTiming(hints.ignored ?? [])).toBe(
      'ignored;desc="x-batch-max-wait-ms", ignored;desc="x-batch-priority"',
    );
  });
});
