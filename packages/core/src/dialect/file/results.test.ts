import { describe, expect, it } from 'vitest';
import { atPointer, seqOfId } from './results.js';

describe('atPointer (RFC 6901)', () => {
  const doc = { a: { 'b/c': [10, { 'd~e': 'x' }] }, '': 'empty' };
  it('walks fields and array positions, with ~1 and ~0', () => {
    expect(atPointer(doc, '')).toBe(doc);
    expect(atPointer(doc, '/a/b~1c/0')).toBe(10);
    expect(atPointer(doc, '/a/b~1c/1/d~0e')).toBe('x');
    expect(atPointer(doc, '/')).toBe('empty');
  });
  it('finds nothing where nothing is', () => {
    expect(atPointer(doc, '/a/b~1c/01')).toBeUndefined(); // no leading zeros
    expect(atPointer(doc, '/a/b~1c/-1')).toBeUndefined();
    expect(atPointer(doc, '/a/b~1c/2')).toBeUndefined();
    expect(atPointer(doc, '/a/x')).toBeUndefined();
    expect(atPointer(doc, '/a/b~1c/0/x')).toBeUndefined();
    expect(atPointer({}, '/toString')).toBeUndefined(); // own fields only
    expect(atPointer(null, '/a')).toBeUndefined();
  });
});

describe('seqOfId', () => {
  it('reads a number id as is', () => {
    expect(seqOfId(3, { type: 'number', prefix: '' })).toBe(3);
    expect(seqOfId('3', { type: 'number', prefix: '' })).toBeUndefined();
  });
  it('reads a string id after its prefix, digits only, no leading zero', () => {
    const form = { type: 'string', prefix: 'op' } as const;
    expect(seqOfId('op0', form)).toBe(0);
    expect(seqOfId('op12', form)).toBe(12);
    expect(seqOfId('op012', form)).toBeUndefined();
    expect(seqOfId('op', form)).toBeUndefined();
    expect(seqOfId('x12', form)).toBeUndefined();
    expect(seqOfId('op1a', form)).toBeUndefined();
    expect(seqOfId(12, form)).toBeUndefined();
    expect(seqOfId('7', { type: 'string', prefix: '' })).toBe(7);
  });
});
