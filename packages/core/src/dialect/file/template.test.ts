import { describe, expect, it } from 'vitest';
import type { OpRequest } from '../dialect.js';
import { checkTemplate, render } from './template.js';

const op = (over: Partial<OpRequest> = {}): OpRequest => ({
  method: 'POST',
  path: '/a/b',
  query: {},
  body: undefined,
  apiVersion: undefined,
  ...over,
});
const at = (o: OpRequest, seq = 0, queryMode: 'object' | 'path' = 'path') => ({
  seq,
  op: o,
  prefix: '/root/s1',
  queryMode,
});

describe('render', () => {
  it('copies plain JSON as written, compactly', () => {
    expect(render({ a: [1, 'x', null, true, { b: 2.5 }] }, at(op()))).toBe(
      '{"a":[1,"x",null,true,{"b":2.5}]}',
    );
  });

  it('fills the ops place with the ops text, and an empty list without it', () => {
    expect(render({ list: { $: 'ops' }, n: 1 }, undefined, '[1,2]')).toBe('{"list":[1,2],"n":1}');
    expect(render({ $: 'ops' }, undefined)).toBe('[]');
  });

  it('writes ids as numbers, strings, or strings with a prefix', () => {
    expect(render([{ $: 'id' }], at(op(), 4))).toBe('[4]');
    expect(render([{ $: 'id', type: 'string' }], at(op(), 4))).toBe('["4"]');
    expect(render([{ $: 'id', prefix: 'op' }], at(op(), 4))).toBe('["op4"]');
    expect(render([{ $: 'id', prefix: '' }], at(op(), 4))).toBe('["4"]');
  });

  it('writes the path below the scope or whole, with the query as received or from the object', () => {
    const o = op({ method: 'GET', search: '?x=1&x=2', query: { y: 'a b' } });
    expect(render({ $: 'path' }, at(o))).toBe('"/a/b"');
    expect(render({ $: 'path', whole: true }, at(o))).toBe('"/root/s1/a/b"');
    expect(render({ $: 'path', query: true }, at(o))).toBe('"/a/b?x=1&x=2"');
    expect(render({ $: 'path', query: true }, at(o, 0, 'object'))).toBe('"/a/b?y=a+b"');
    expect(render({ $: 'path', query: true }, at(op({ search: '' })))).toBe('"/a/b"');
    expect(render({ $: 'path', query: true }, at(op()))).toBe('"/a/b"');
    expect(render({ $: 'method' }, at(o))).toBe('"GET"');
  });

  it('splices the body in as received; leaves out, or replaces, what an op has not', () => {
    const body = '{ "k" : 1 }';
    expect(render({ b: { $: 'body' } }, at(op({ body })))).toBe(`{"b":${body}}`);
    expect(render({ b: { $: 'body' }, c: 1 }, at(op()))).toBe('{"c":1}');
    expect(render([1, { $: 'body' }], at(op()))).toBe('[1]');
    expect(render({ b: { $: 'body', absent: {} } }, at(op()))).toBe('{"b":{}}');
    expect(render({ q: { $: 'query' } }, at(op({ query: { a: '1' } })))).toBe('{"q":{"a":"1"}}');
    expect(render({ q: { $: 'query' } }, at(op()))).toBe('{}');
    expect(render({ h: { $: 'headers' } }, at(op({ headers: { 'if-match': 'x' } })))).toBe(
      '{"h":{"if-match":"x"}}',
    );
    expect(render({ h: { $: 'headers' } }, at(op({ headers: {} })))).toBe('{}');
    expect(render({ h: { $: 'headers' } }, at(op()))).toBe('{}');
    expect(render({ v: { $: 'apiVersion' } }, at(op({ apiVersion: '2' })))).toBe('{"v":"2"}');
    expect(render({ v: { $: 'apiVersion', absent: 'none' } }, at(op()))).toBe('{"v":"none"}');
  });

  it("puts the query object in a GET's body place with onGet", () => {
    const place = { $: 'body', onGet: 'query', absent: {} };
    expect(render(place, at(op({ method: 'GET', query: {} })))).toBe('{}');
    expect(render(place, at(op({ method: 'GET', query: { a: '1' } })))).toBe('{"a":"1"}');
    expect(render(place, at(op({ method: 'DELETE' })))).toBe('{}');
    expect(render(place, at(op({ body: '[1]' })))).toBe('[1]');
  });

  it('writes an object with $if only when its place has a value', () => {
    const t = [{ $if: 'apiVersion', v: { $: 'apiVersion' } }];
    expect(render(t, at(op({ apiVersion: '3' })))).toBe('[{"v":"3"}]');
    expect(render(t, at(op()))).toBe('[]');
    expect(render({ $if: 'body', x: 1 }, at(op({ body: '1' })))).toBe('{"x":1}');
    expect(render({ $if: 'query', x: 1 }, at(op()))).toBe('null');
    expect(render({ $if: 'headers', x: 1 }, undefined)).toBe('null');
  });
});

describe('checkTemplate', () => {
  it('lists the places a valid template uses', () => {
    const checked = checkTemplate([{ $: 'id' }, { $: 'method' }, { $: 'path' }], 'op');
    if ('message' in checked) throw new Error(checked.message);
    expect([...checked.places.keys()]).toEqual(['id', 'method', 'path']);
    expect(checkTemplate({ x: { $: 'ops' } }, 'envelope')).not.toHaveProperty('message');
  });
  it('lets an object with $if come after another optional element, not a plain one', () => {
    expect(
      checkTemplate([{ $: 'method' }, { $: 'path' }, { $: 'body' }, { $if: 'body', a: 1 }], 'op'),
    ).not.toHaveProperty('message');
    expect(checkTemplate([{ $: 'method' }, { $: 'path' }, { $if: 'body', a: 1 }, [1]], 'op')).toMatchObject({
      path: [3],
    });
    expect(
      checkTemplate([{ $: 'method' }, { $: 'path' }, { $: 'body', onGet: 'query' }, 1], 'op'),
    ).toMatchObject({ path: [3] }); // a DELETE without a body has no value there
    expect(
      checkTemplate([{ $: 'method' }, { $: 'path' }, { $: 'body', onGet: 'query', absent: {} }, 1], 'op'),
    ).not.toHaveProperty('message');
  });
});
