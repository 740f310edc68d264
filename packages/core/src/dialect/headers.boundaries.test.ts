// relayableHeaders at its boundaries (cases the Graph dialect's mutation run, docs/testing.md, showed
// no test pinned down). Entries are compared as lists, so a key holding
// `undefined` counts as present.
import { describe, expect, it } from 'vitest';
import { relayableHeaders } from './headers.js';

const entries = (headers: Readonly<Record<string, unknown>> | undefined) =>
  Object.entries(relayableHeaders(headers));

describe('relayableHeaders', () => {
  it('gives nothing for no headers', () => {
    expect(entries(undefined)).toEqual([]);
  });

  it('leaves out a name with any character outside the token set, wherever it is', () => {
    expect(
      entries({ 'x y': 'a', 'x:y': 'b', ' x': 'c', 'x ': 'd', 'é-x': 'e', 'x-é': 'f', '': 'g' }),
    ).toEqual([]);
    expect(entries({ "X-Ok!#$%&'*+.^_`|~": 'a' })).toEqual([["x-ok!#$%&'*+.^_`|~", 'a']]);
  });

  it('joins a list of strings only when every item is a string; other values are left out', () => {
    expect(entries({ vary: ['accept', 'origin'] })).toEqual([['vary', 'accept, origin']]);
    expect(entries({ a: ['x', 1], b: [1, 2], c: 5, d: null, e: { v: 'x' }, f: undefined, g: true })).toEqual(
      [],
    );
  });
});
