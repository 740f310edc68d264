import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import type { PendingOp } from './op.js';
import { pathPrefixes, ResourceIndex } from './resources.js';

let seq = 0;
function op(method: 'GET' | 'POST' | 'PUT', path: string): PendingOp {
  return pendingOp({ seq: seq++, method, path });
}

describe('ResourceIndex', () => {
  it('lists segment prefixes', () => {
    expect(pathPrefixes('/conversations/c1/messages/')).toEqual([
      '/conversations',
      '/conversations/c1',
      '/conversations/c1/messages',
    ]);
  });

  it('blocks a later write on the same path, a parent or a child, but not a sibling', () => {
    const index = new ResourceIndex();
    const first = op('PUT', '/conversations/c1');
    index.add(first);
    const same = op('PUT', '/conversations/c1');
    const child = op('POST', '/conversations/c1/messages');
    const parentRead = op('GET', '/conversations');
    const sibling = op('PUT', '/conversations/c10');
    for (const o of [same, child, parentRead, sibling]) index.add(o);
    expect(index.isBlocked(first)).toBe(false);
    expect(index.isBlocked(same)).toBe(true);
    expect(index.isBlocked(child)).toBe(true);
    expect(index.isBlocked(parentRead)).toBe(true);
    // The list read of /conversations covers c10 too, so the write waits for it...
    expect(index.isBlocked(sibling)).toBe(true);
    index.delete(parentRead);
    // ...but nothing on c1 holds it back.
    expect(index.isBlocked(sibling)).toBe(false);
    index.delete(first);
    expect(index.isBlocked(same)).toBe(false);
    expect(index.isBlocked(child)).toBe(true); // still behind `same`
  });

  it('lets reads pass reads', () => {
    const index = new ResourceIndex();
    const a = op('GET', '/users/u1');
    const b = op('GET', '/users/u1');
    index.add(a);
    index.add(b);
    expect(index.isBlocked(b)).toBe(false);
    expect(index.hasLaterWrite(a)).toBe(false);
    index.add(op('PUT', '/users/u1'));
    expect(index.hasLaterWrite(a)).toBe(true);
  });

  it('sees a later write to a parent or a child of a read, not to a sibling or from before', () => {
    const index = new ResourceIndex();
    const before = op('PUT', '/conversations/c1');
    const read = op('GET', '/conversations/c1/messages');
    index.add(before);
    index.add(read);
    expect(index.hasLaterWrite(read)).toBe(false); // the earlier write does not count
    index.add(op('PUT', '/conversations/c10'));
    index.add(op('POST', '/conversations/c1/messagesx'));
    expect(index.hasLaterWrite(read)).toBe(false); // siblings sharing a name prefix do not count
    const parent = op('PUT', '/conversations/c1');
    index.add(parent);
    expect(index.hasLaterWrite(read)).toBe(true);
    index.delete(parent);
    expect(index.hasLaterWrite(read)).toBe(false);
    index.add(op('POST', '/conversations/c1/messages/m1'));
    expect(index.hasLaterWrite(read)).toBe(true);
  });

  it('sees a later write to the root of a read path', () => {
    const index = new ResourceIndex();
    const read = op('GET', '/users/u1');
    index.add(read);
    index.add(op('POST', '/users'));
    expect(index.hasLaterWrite(read)).toBe(true);
  });

  it('lists the prefixes of the root and of paths without a trailing slash', () => {
    expect(pathPrefixes('/')).toEqual(['/']);
    expect(pathPrefixes('/users/u1')).toEqual(['/users', '/users/u1']);
    expect(pathPrefixes('/users')).toEqual(['/users']);
  });

  it('treats a path with a trailing slash as the same resource', () => {
    const index = new ResourceIndex();
    const write = op('PUT', '/users/u1/');
    const read = op('GET', '/users/u1');
    const laterWrite = op('PUT', '/users/u1/');
    index.add(write);
    index.add(read);
    expect(index.isBlocked(read)).toBe(true);
    index.delete(write);
    expect(index.isBlocked(read)).toBe(false);
    index.add(laterWrite);
    expect(index.hasLaterWrite(read)).toBe(true);
    expect(index.isBlocked(laterWrite)).toBe(true);
    index.delete(read);
    expect(index.isBlocked(laterWrite)).toBe(false);
    // Its children see it as their parent, slash or not.
    const child = op('POST', '/users/u1/messages');
    index.add(child);
    expect(index.isBlocked(child)).toBe(true);
    index.delete(laterWrite);
    expect(index.isBlocked(child)).toBe(false);
  });

  it('counts what it holds and ignores deleting an op it does not hold', () => {
    const index = new ResourceIndex();
    const a = op('PUT', '/users/u1');
    const b = op('GET', '/users/u1');
    index.add(a);
    index.add(b);
    expect(index.size).toBe(2);
    index.delete(op('PUT', '/users/u1'));
    expect(index.size).toBe(2);
    expect(index.isBlocked(b)).toBe(true);
    index.delete(a);
    index.delete(a);
    expect(index.size).toBe(1);
    expect(index.isBlocked(b)).toBe(false);
  });

  it('answers for an op it does not hold from its path', () => {
    const index = new ResourceIndex();
    const write = op('PUT', '/conversations/c1');
    index.add(write);
    const outsider = op('GET', '/conversations/c1/messages');
    expect(index.isBlocked(outsider)).toBe(true);
    expect(index.hasLaterWrite(outsider)).toBe(false);
    const earlier = { ...outsider, seq: -1 };
    expect(index.isBlocked(earlier)).toBe(false);
    expect(index.hasLaterWrite(earlier)).toBe(true);
  });
});
