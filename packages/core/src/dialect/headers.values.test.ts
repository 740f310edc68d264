// A header value the upstream put in a sub-answer reaches the caller only if Node can write it: the
// class is "every value node:http accepts", checked against Node's own validator.
import { validateHeaderValue } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { relayableHeaders } from './headers.js';

const nodeAccepts = (value: string): boolean => {
  try {
    validateHeaderValue('x-test', value);
    return true;
  } catch {
    return false;
  }
};

describe('relayableHeaders and the values Node can write', () => {
  it('drops what Node refuses (DEL, other controls, characters above \\xff) and keeps what it writes', () => {
    expect(
      relayableHeaders({
        'x-euro': 'caf€',
        'x-del': 'a\x7fb',
        'x-bell': 'a\x07b',
        'x-tab': 'a\tb',
        'x-latin': 'café',
        'x-plain': 'W/"etag-1"',
      }),
    ).toEqual({ 'x-tab': 'a\tb', 'x-latin': 'café', 'x-plain': 'W/"etag-1"' });
  });

  // 2,000 values, about half of them refused by a validator that throws: CPU-bound, and past vitest's
  // 5 s default on a machine busy with other suites (seen once beside a mutation run), so its own bound.
  it('keeps a value exactly when node:http would write it', { timeout: 30_000 }, () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 12 }), (value) => {
        expect(relayableHeaders({ 'x-test': value })['x-test'] !== undefined).toBe(nodeAccepts(value));
      }),
      { numRuns: 2000 },
    );
  });
});
