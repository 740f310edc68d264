// The one spelling of a resource the ordering rules compare: a trailing slash does not make another
// resource, and nothing else about the path changes.

import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import { ResourceIndex, resourceOf } from './resources.js';

describe('resourceOf', () => {
  it('drops a trailing slash and changes nothing else', () => {
    expect(resourceOf('/users/u1/')).toBe('/users/u1');
    expect(resourceOf('/users/u1')).toBe('/users/u1');
    expect(resourceOf('/conversations/c1/messages')).toBe('/conversations/c1/messages');
    expect(resourceOf('/')).toBe('/');
  });

  it('keeps two sibling resources apart', () => {
    expect(resourceOf('/users/u1')).not.toBe(resourceOf('/users/u2'));
  });
});

describe('ResourceIndex.hasLaterWrite, read spelt with a trailing slash', () => {
  it('sees a later write to the same resource spelt without it, and to its parent', () => {
    const index = new ResourceIndex();
    const read = pendingOp({ seq: 1, method: 'GET', path: '/users/u1/' });
    index.add(read);
    expect(index.hasLaterWrite(read)).toBe(false);
    const sibling = pendingOp({ seq: 2, method: 'PUT', path: '/users/u10' });
    index.add(sibling);
    expect(index.hasLaterWrite(read)).toBe(false);
    const write = pendingOp({ seq: 3, method: 'PUT', path: '/users/u1' });
    index.add(write);
    expect(index.hasLaterWrite(read)).toBe(true);
    index.delete(write);
    expect(index.hasLaterWrite(read)).toBe(false);
    index.add(pendingOp({ seq: 4, method: 'DELETE', path: '/users' }));
    expect(index.hasLaterWrite(read)).toBe(true);
  });
});

describe('ResourceIndex, reads of a parent and a child', () => {
  it('lets a read pass an earlier read of its parent, and does not take a later one for a write', () => {
    const index = new ResourceIndex();
    const parent = pendingOp({ seq: 1, method: 'GET', path: '/conversations/c1' });
    const child = pendingOp({ seq: 2, method: 'GET', path: '/conversations/c1/messages' });
    const laterParent = pendingOp({ seq: 3, method: 'GET', path: '/conversations' });
    for (const op of [parent, child, laterParent]) index.add(op);
    expect(index.isBlocked(child)).toBe(false);
    expect(index.isBlocked(laterParent)).toBe(false);
    expect(index.hasLaterWrite(child)).toBe(false);
    expect(index.hasLaterWrite(parent)).toBe(false);
    // A write to the parent does block the child that came after it.
    const write = pendingOp({ seq: 4, method: 'PUT', path: '/conversations/c1' });
    index.add(write);
    expect(index.hasLaterWrite(child)).toBe(true);
    expect(index.isBlocked(pendingOp({ seq: 5, method: 'GET', path: '/conversations/c1/messages' }))).toBe(
      true,
    );
  });
});
