import { describe, expect, it } from 'vitest';
import { boundaryOf, readHeaders, readHttp, readPart, splitHead, splitParts, statusOf } from './multipart.js';

describe('boundaryOf', () => {
  it.each([
    ['multipart/mixed; boundary=batch_abc', 'batch_abc'],
    ['Multipart/Mixed;BOUNDARY="quoted value"', 'quoted value'],
    ['multipart/mixed; charset=utf-8; boundary=b2', 'b2'],
    ['multipart/mixed; boundary=' + 'x'.repeat(70), 'x'.repeat(70)],
  ])('reads %j', (type, boundary) => {
    expect(boundaryOf(type)).toBe(boundary);
  });

  it.each([
    undefined,
    'application/json',
    'multipart/form-data; boundary=b',
    'multipart/mixed',
    'multipart/mixed; boundary=',
    'multipart/mixed; boundary=""',
    'multipart/mixed; boundaryless',
    `multipart/mixed; boundary=${'x'.repeat(71)}`,
  ])('refuses %j', (type) => {
    expect(boundaryOf(type)).toBeUndefined();
  });
});

describe('splitParts', () => {
  it('splits on delimiter lines, with CRLF or LF, preamble and epilogue ignored', () => {
    const crlf = 'preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue';
    expect(splitParts(crlf, 'b')).toEqual(['A: 1\r\n\r\none', '\r\ntwo']);
    expect(splitParts('--b\nx\n--b\ny\n--b--', 'b')).toEqual(['x', 'y']);
  });

  it('keeps a line that only starts like the delimiter inside its part', () => {
    expect(splitParts('--b\r\none\r\n--bb\r\n--b--', 'b')).toEqual(['one\r\n--bb']);
    expect(splitParts('--b\r\na --b c\r\n--b--', 'b')).toEqual(['a --b c']);
    expect(splitParts('--b\r\none\r\n--b-x\r\n--b \t\r\ntwo\r\n--b--', 'b')).toEqual(['one\r\n--b-x', 'two']);
    expect(splitParts('--bx\r\n--b\r\none\r\n--b--', 'b')).toEqual(['one']);
  });

  it('has no parts without a delimiter, and none for a close delimiter alone', () => {
    expect(splitParts('no delimiter here', 'b')).toBeUndefined();
    expect(splitParts('', 'b')).toBeUndefined();
    expect(splitParts('--b--\r\n', 'b')).toEqual([]);
  });

  it('leaves out a part a truncated body did not close', () => {
    expect(splitParts('--b\r\none\r\n--b\r\ntwo, cut sh', 'b')).toEqual(['one']);
    expect(splitParts('--b', 'b')).toEqual([]);
  });
});

describe('headers and nested HTTP messages', () => {
  it('splits a head at the first blank line, CRLF or LF, whichever comes first', () => {
    expect(splitHead('a\r\n\r\nb\n\nc')).toEqual({ head: 'a', rest: 'b\n\nc' });
    expect(splitHead('a\n\nb\r\n\r\nc')).toEqual({ head: 'a', rest: 'b\r\n\r\nc' });
    expect(splitHead('only a head')).toEqual({ head: 'only a head', rest: '' });
  });

  it('reads header names in lower case, joins repeats, skips lines without a name', () => {
    expect(readHeaders(['ETag: "1"', 'Vary: a', 'vary: b', ': nameless', 'garbage', 'X:  y: z '])).toEqual({
      etag: '"1"',
      vary: 'a, b',
      x: 'y: z',
    });
  });

  it('reads a part: its MIME headers, then its content', () => {
    expect(readPart('Content-ID: <response-item-1>\r\n\r\nHTTP/1.1 200 OK\r\n')).toEqual({
      headers: { 'content-id': '<response-item-1>' },
      content: 'HTTP/1.1 200 OK\r\n',
    });
    expect(readPart('\r\n\r\nbody')).toEqual({ headers: {}, content: 'body' });
  });

  it('reads a nested response: status line, headers, body; blank lines before it skipped', () => {
    const http = readHttp('\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"e":1}');
    expect(http).toEqual({
      start: 'HTTP/1.1 404 Not Found',
      headers: { 'content-type': 'application/json' },
      body: '{"e":1}',
    });
    expect(readHttp('HTTP/1.1 204 No Content\r\n\r\n')).toEqual({
      start: 'HTTP/1.1 204 No Content',
      headers: {},
      body: '',
    });
  });

  it.each([
    ['HTTP/1.1 200 OK', 200],
    ['HTTP/1.0 503 Service Unavailable', 503],
    ['HTTP/1.1 204', 204],
  ])('reads the status of %j', (line, status) => {
    expect(statusOf(line)).toBe(status);
  });

  it.each([
    'HTTP/2 200 OK',
    'HTTP/1.1 20 OK',
    'HTTP/1.1 2000 OK',
    'HTTP/1.1 abc OK',
    'GET / HTTP/1.1',
    '',
    ' HTTP/1.1 200 OK',
    'HTTP/1.1 200OK',
  ])('finds no status in %j', (line) => {
    expect(statusOf(line)).toBeUndefined();
  });
});
