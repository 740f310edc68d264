// parseRequestTarget's shortcut for paths without percent-encoding must decide exactly as the
// segment-by-segment check: every path of up to three segments drawn from pieces that sit on each
// rule's edge, against that check written out here.

import { ProxyError } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import { parseRequestTarget } from './route.js';

/** The check a segment at a time, as parseRequestTarget did it before the shortcut. */
function reference(pathname: string): string | undefined {
  for (const segment of pathname.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return 'the path has an invalid percent-encoding';
    }
    if (decoded === '.' || decoded === '..') return 'the path may not contain "." or ".." segments';
    if (decoded !== segment && (decoded.includes('/') || decoded.includes('\\')))
      return 'the path may not contain encoded slashes';
    if (decoded.includes('\0')) return 'the path may not contain NUL';
  }
  return undefined;
}

const PIECES = [
  '',
  '.',
  '..',
  '...',
  '.a',
  'a.',
  'a',
  'v1',
  '%2e',
  '%2E%2e',
  '%2F',
  '%5c',
  '%00',
  '\0',
  'a\0',
  '%zz',
  '%',
  '%41',
];

function* paths(): Generator<string> {
  for (const a of PIECES) {
    yield `/${a}`;
    for (const b of PIECES) {
      yield `/${a}/${b}`;
      for (const c of PIECES) yield `/${a}/${b}/${c}`;
    }
  }
}

describe('parseRequestTarget against the segment-by-segment check', () => {
  it('accepts and refuses the same paths, with the same reason', () => {
    let checked = 0;
    for (const path of paths()) {
      const result = parseRequestTarget(`${path}?q=1`);
      const expected = reference(path);
      if (expected === undefined) expect(result, path).toEqual({ pathname: path, search: '?q=1' });
      else {
        expect(result, path).toBeInstanceOf(ProxyError);
        expect((result as ProxyError).message, path).toBe(expected);
      }
      checked++;
    }
    expect(checked).toBe(PIECES.length * (1 + PIECES.length * (1 + PIECES.length)));
  });
});
