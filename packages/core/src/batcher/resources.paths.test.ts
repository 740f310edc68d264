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
