import { describe, expect, it } from 'vitest';
import { type PriorityRules, parsePriorityRules } from './priority-rules.js';

const rules = (text: string) => {
  const parsed = parsePriorityRules(text);
  if ('invalid' in parsed) throw new Error(`${parsed.invalid}: ${parsed.why}`);
  return parsed as PriorityRules;
};

describe('PRIORITY_RULES', () => {
  // Built inside each test, not while the file is collected: a mutation run switches its planted
  // bug on per test, after collection.
  const example = () =>
    rules(' low GET /v1/*/users/*/sync/** ; high POST /v1/*/messages;normal * /v1/*/users/* ; low * /v1/**');

  it('reads every entry, blank ones skipped', () => {
    expect(example().size).toBe(4);
    expect(rules('').size).toBe(0);
    expect(rules(' ; ').priorityOf('GET', '/v1/a')).toBeUndefined();
  });

  it.each([
    ['GET', '/v1/app/users/u1/sync', 'low'],
    ['GET', '/v1/app/users/u1/sync/a/b', 'low'],
    ['POST', '/v1/app/users/u1/sync', 'low'],
    ['POST', '/v1/app/messages', 'high'],
    ['GET', '/v1/app/messages', 'low'],
    ['PUT', '/v1/app/users/u1', 'normal'],
    ['GET', '/v1/app/users', 'low'],
    ['GET', '/v2/app/users', undefined],
  ])('%s %s is %s (the first entry that matches)', (method, path, priority) => {
    expect(example().priorityOf(method, path)).toBe(priority);
  });

  it('matches a final ** to any rest, the empty one too, but never to missing segments', () => {
    const rest = rules('high GET /v1/*/**');
    expect(rest.priorityOf('GET', '/v1/a')).toBe('high');
    expect(rest.priorityOf('GET', '/v1/a/b/c')).toBe('high');
    expect(rest.priorityOf('GET', '/v1')).toBeUndefined();
    expect(rest.priorityOf('GET', '/v2/a')).toBeUndefined();
  });

  it('splits an entry on any run of spaces or tabs, and takes * for any method', () => {
    const spaced = rules('high   POST\t/v1/*/messages; low * /v1/*/sync');
    expect(spaced.priorityOf('POST', '/v1/a/messages')).toBe('high');
    expect(spaced.priorityOf('GET', '/v1/a/messages')).toBeUndefined();
    expect(spaced.priorityOf('DELETE', '/v1/a/sync')).toBe('low');
    expect(spaced.priorityOf('*', '/v1/a/messages')).toBeUndefined();
  });

  it('matches a * to exactly one segment, and a path of another length not at all', () => {
    const one = rules('high GET /v1/*/users');
    expect(one.priorityOf('GET', '/v1/a/users')).toBe('high');
    expect(one.priorityOf('GET', '/v1/a/b/users')).toBeUndefined();
    expect(one.priorityOf('GET', '/v1/a/users/u1')).toBeUndefined();
    expect(one.priorityOf('GET', '/v1/users')).toBeUndefined();
  });

  it.each([
    ['urgent GET /v1/*', 'the priority must be one of high, normal, low'],
    ['high get /v1/*', 'the method must be upper case, or *'],
    ['high xGET /v1/*', 'the method must be upper case, or *'],
    ['high GETx /v1/*', 'the method must be upper case, or *'],
    ['high ** /v1/*', 'the method must be upper case, or *'],
    ['high GET v1/*', 'the path must start with /'],
    ['high GET /v1/**/x', '** may only end the path'],
    ['high /v1/*', 'expected "<priority> <METHOD|*> <path>"'],
    ['high GET /v1/* extra', 'expected "<priority> <METHOD|*> <path>"'],
  ])('refuses %j: %s', (text, why) => {
    expect(parsePriorityRules(`low GET /a; ${text}`)).toEqual({ invalid: text, why });
  });
});
