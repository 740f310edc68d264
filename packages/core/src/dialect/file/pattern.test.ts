import { describe, expect, it } from 'vitest';
import { fillPath, matchesPath, matchScope, scopePattern, scopePrefix } from './pattern.js';

describe('the scope pattern', () => {
  const one = scopePattern('/services/data/{version}', false);
  const two = scopePattern('/orgs/{org}/v/{ver}', false);
  const folded = scopePattern('/API/{tenant}', true);

  it('splits a path into the scope and the path below it', () => {
    expect(matchScope(one, '/services/data/v59.0/sobjects/Account/1')).toEqual({
      appId: 'v59.0',
      path: '/sobjects/Account/1',
    });
    expect(matchScope(two, '/orgs/o1/v/2/x')).toEqual({ appId: 'o1/2', path: '/x' });
    expect(matchScope(one, '/services/data/a%20b/x')).toEqual({ appId: 'a b', path: '/x' });
  });

  it('refuses what is not below the scope', () => {
    expect(matchScope(one, '/services/data/v59.0')).toBeUndefined(); // nothing below
    expect(matchScope(one, '/services/data/v59.0/')).toBeUndefined();
    expect(matchScope(one, '/services/Data/v59.0/x')).toBeUndefined(); // literals match exactly
    expect(matchScope(one, '/services/data//x')).toBeUndefined(); // empty capture
    expect(matchScope(one, '/services/data/%E0/x')).toBeUndefined(); // bad percent-encoding
    expect(matchScope(one, '/services/data/a%2Fb/x')).toBeUndefined(); // a capture with a slash
    expect(matchScope(one, 'services/data/v1/x')).toBeUndefined();
    expect(matchScope(one, '/services/data')).toBeUndefined();
  });

  it('matches literals in any case when paths are case-insensitive', () => {
    expect(matchScope(folded, '/api/T1/Users')).toEqual({ appId: 'T1', path: '/Users' });
    expect(matchScope(folded, '/Api/t1/x')).toEqual({ appId: 't1', path: '/x' });
  });

  it('builds paths back from the captures, encoded', () => {
    expect(fillPath(one, '/services/data/{version}/composite', 'v59.0')).toBe(
      '/services/data/v59.0/composite',
    );
    expect(fillPath(two, '/orgs/{org}/v/{ver}/batch', 'o 1/2')).toBe('/orgs/o%201/v/2/batch');
    expect(scopePrefix(one, 'a b')).toBe('/services/data/a%20b');
    expect(scopePrefix(two, 'o1/2')).toBe('/orgs/o1/v/2');
  });
});

describe('path patterns below the scope', () => {
  it('matches literals, * one segment and a final ** any rest', () => {
    expect(matchesPath('/batch', '/batch', false)).toBe(true);
    expect(matchesPath('/batch', '/batch/', false)).toBe(true);
    expect(matchesPath('/batch', '/Batch', false)).toBe(false);
    expect(matchesPath('/batch', '/Batch', true)).toBe(true);
    expect(matchesPath('/files/*/content', '/files/f1/content', false)).toBe(true);
    expect(matchesPath('/files/*/content', '/files//content', false)).toBe(false);
    expect(matchesPath('/files/*/content', '/files/f1/content/x', false)).toBe(false);
    expect(matchesPath('/files/*/content', '/files/f1', false)).toBe(false);
    expect(matchesPath('/uploads/**', '/uploads/a/b', false)).toBe(true);
    expect(matchesPath('/uploads/**', '/uploads/a', false)).toBe(true);
    expect(matchesPath('/uploads/**', '/uploads', false)).toBe(false);
    expect(matchesPath('/**/x', '/a/x', false)).toBe(false); // ** only at the end
  });
});
