// Where each top-level member's value sits: escapes, nesting and whitespace must not move the spans,
// or the proxy would replace the wrong text in a caller's request.

import { describe, expect, it } from 'vitest';
import { memberSpans } from './json-members.js';

const values = (text: string) => memberSpans(text)?.map((m) => [m.name, text.slice(m.start, m.end)]);

describe('memberSpans', () => {
  it('finds each member and its value text, whatever the value', () => {
    expect(values('{"a":1,"b":"x","c":[1,{"d":2}],"e":{"f":[]},"g":null,"h":true,"i":-1.5e3}')).toEqual([
      ['a', '1'],
      ['b', '"x"'],
      ['c', '[1,{"d":2}]'],
      ['e', '{"f":[]}'],
      ['g', 'null'],
      ['h', 'true'],
      ['i', '-1.5e3'],
    ]);
  });

  it('keeps whitespace of every kind outside the value', () => {
    expect(values(' \t\r\n{ "a" \n:\t 12 \r, "b"\n:\n"y"\n}\n')).toEqual([
      ['a', '12'],
      ['b', '"y"'],
    ]);
  });

  it('reads past quotes, backslashes and brackets inside strings', () => {
    expect(values('{"a":"x\\"}],{","b":"\\\\","c":["]\\"[",{"k":"}"}],"d":0}')).toEqual([
      ['a', '"x\\"}],{"'],
      ['b', '"\\\\"'],
      ['c', '["]\\"[",{"k":"}"}]'],
      ['d', '0'],
    ]);
  });

  it('decodes member names, escapes included', () => {
    expect(memberSpans('{"\\u0069d":1,"a\\"b":2}')?.map((m) => m.name)).toEqual(['id', 'a"b']);
  });

  it('reads the last value up to the closing brace', () => {
    expect(values('{"a":5}')).toEqual([['a', '5']]);
    expect(values('{"a":[[]]}')).toEqual([['a', '[[]]']]);
  });

  it('finds no members in an empty object, and none in what is not an object', () => {
    expect(memberSpans('{}')).toEqual([]);
    expect(memberSpans(' { } ')).toEqual([]);
    for (const text of ['[]', '"{}"', '1', 'null', '']) expect(memberSpans(text), text).toBeUndefined();
  });
});
