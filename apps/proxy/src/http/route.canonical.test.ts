// One spelling per resource (SPEC §8c): the path the engine orders and collapses by.

import { describe, expect, it } from 'vitest';
import { canonicalPath } from './route.js';

describe('canonicalPath', () => {
  it('leaves a path that is already canonical as it is', () => {
    for (const path of ['/', '/v1/app1/users/u1', '/v1/app1/users/u1~x.y_z-0']) {
      expect(canonicalPath(path)).toBe(path);
    }
  });

  it('drops empty segments and a trailing slash', () => {
    expect(canonicalPath('/v1/app1/users/')).toBe('/v1/app1/users');
    expect(canonicalPath('//v1//app1/users')).toBe('/v1/app1/users');
    expect(canonicalPath('/v1/app1/users//')).toBe('/v1/app1/users');
    expect(canonicalPath('//')).toBe('/');
  });

  it('decodes percent-encoded unreserved characters, in either case', () => {
    expect(canonicalPath('/v1/app1/users/%75%31')).toBe('/v1/app1/users/u1');
    expect(canonicalPath('/v1/app1/users/%4A%6a')).toBe('/v1/app1/users/Jj');
    expect(canonicalPath('/v1/app1/users/a%7eb%2Dc%2e%5F%30')).toBe('/v1/app1/users/a~b-c._0');
  });

  it('keeps other percent-encodings, in upper case', () => {
    expect(canonicalPath('/v1/app1/users/a%2ab')).toBe('/v1/app1/users/a%2Ab');
    expect(canonicalPath('/v1/app1/users/%c3%a9t%C3%A9')).toBe('/v1/app1/users/%C3%A9t%C3%A9');
    expect(canonicalPath('/v1/app1/users/a%20b%3F')).toBe('/v1/app1/users/a%20b%3F');
  });

  it('does all of it at once', () => {
    expect(canonicalPath('//v1/app1/users/%75%2a/')).toBe('/v1/app1/users/u%2A');
  });
});
