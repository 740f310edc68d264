// `ResourceIndex.isBlockedOutside`: whether an op may follow the members of a serial chain (Graph
// dependsOn), i.e. whether every earlier unanswered op it conflicts with is in the chain. The same
// conflicts as `isBlocked` (same path, parent, child; a write with anything, a read with writes only).

import { describe, expect, it } from 'vitest';
import { pendingOp } from '../testing/pending-op.js';
import type { PendingOp } from './op.js';
import { ResourceIndex } from './resources.js';

let seq = 0;
function op(method: 'GET' | 'POST' | 'PUT', path: string): PendingOp {
  return pendingOp({ seq: seq++, method, path });
}

function indexOf(...ops: PendingOp[]): ResourceIndex {
  const index = new ResourceIndex();
  for (const o of ops) index.add(o);
  return index;
}

const none = new Set<PendingOp>();

describe('ResourceIndex.isBlockedOutside', () => {
  it('lets a write follow the earlier writes to its path only when all of them are in the chain', () => {
    const a = op('PUT', '/users/u1');
    const b = op('PUT', '/users/u1');
    const c = op('PUT', '/users/u1');
    const index = indexOf(a, b, c);
    expect(index.isBlockedOutside(a, none)).toBe(false);
    expect(index.isBlockedOutside(b, none)).toBe(true);
    expect(index.isBlockedOutside(b, new Set([a]))).toBe(false);
    expect(index.isBlockedOutside(c, new Set([a]))).toBe(true); // `b` is outside
    expect(index.isBlockedOutside(c, new Set([b]))).toBe(true); // `a` is outside
    expect(index.isBlockedOutside(c, new Set([a, b]))).toBe(false);
    // Later ops in the chain change nothing (a chain is built in arrival order anyway).
    expect(index.isBlockedOutside(b, new Set([c]))).toBe(true);
  });

  it('lets reads pass reads, makes a write wait for earlier reads and a read for earlier writes only', () => {
    const r1 = op('GET', '/users/u1');
    const r2 = op('GET', '/users/u1');
    const w = op('PUT', '/users/u1');
    const r3 = op('GET', '/users/u1');
    const index = indexOf(r1, r2, w, r3);
    expect(index.isBlockedOutside(r2, none)).toBe(false);
    expect(index.isBlockedOutside(w, none)).toBe(true);
    expect(index.isBlockedOutside(w, new Set([r1]))).toBe(true);
    expect(index.isBlockedOutside(w, new Set([r1, r2]))).toBe(false);
    expect(index.isBlockedOutside(r3, none)).toBe(true);
    // The reads before the write do not hold `r3` back: only the write does.
    expect(index.isBlockedOutside(r3, new Set([w]))).toBe(false);
  });

  it('makes an op wait for a write to its parent path, unless that write is in the chain', () => {
    const parent = op('PUT', '/conversations/c1');
    const write = op('POST', '/conversations/c1/messages');
    const read = op('GET', '/conversations/c1/messages/m1');
    const index = indexOf(parent, write, read);
    expect(index.isBlockedOutside(write, none)).toBe(true);
    expect(index.isBlockedOutside(write, new Set([parent]))).toBe(false);
    expect(index.isBlockedOutside(read, new Set([parent]))).toBe(true); // `write` is outside
    expect(index.isBlockedOutside(read, new Set([write]))).toBe(true); // `parent` is outside
    expect(index.isBlockedOutside(read, new Set([parent, write]))).toBe(false);
  });

  it('makes a write wait for an earlier read of its parent, and for earlier ops below its path', () => {
    const list = op('GET', '/conversations');
    const child = op('POST', '/conversations/c1/messages');
    const write = op('PUT', '/conversations/c1');
    const index = indexOf(list, child, write);
    expect(index.isBlockedOutside(write, new Set([child]))).toBe(true); // the list read is outside
    expect(index.isBlockedOutside(write, new Set([list]))).toBe(true); // the child write is outside
    expect(index.isBlockedOutside(write, new Set([list, child]))).toBe(false);
  });

  it('never holds back an op on a sibling path, nor a read below an earlier read', () => {
    const a = op('PUT', '/conversations/c1');
    const listRead = op('GET', '/users');
    const sibling = op('PUT', '/conversations/c10');
    const read = op('GET', '/users/u1');
    const index = indexOf(a, listRead, sibling, read);
    expect(index.isBlockedOutside(sibling, none)).toBe(false);
    expect(index.isBlockedOutside(read, none)).toBe(false);
  });

  it('treats a path with a trailing slash as the same resource', () => {
    const a = op('PUT', '/users/u1');
    const b = op('PUT', '/users/u1/');
    const child = op('POST', '/users/u1/messages/');
    const index = indexOf(a, b, child);
    expect(index.isBlockedOutside(b, none)).toBe(true);
    expect(index.isBlockedOutside(b, new Set([a]))).toBe(false);
    expect(index.isBlockedOutside(child, new Set([a]))).toBe(true);
    expect(index.isBlockedOutside(child, new Set([a, b]))).toBe(false);
  });

  it('answers for an op it does not hold from its path', () => {
    const parent = op('PUT', '/conversations/c1');
    const same = op('PUT', '/conversations/c1/messages');
    const index = indexOf(parent, same);
    const outsider = op('GET', '/conversations/c1/messages');
    expect(index.isBlockedOutside(outsider, none)).toBe(true);
    expect(index.isBlockedOutside(outsider, new Set([parent]))).toBe(true); // `same` is outside
    expect(index.isBlockedOutside(outsider, new Set([parent, same]))).toBe(false);
    const outsideWrite = op('PUT', '/conversations/c1/');
    expect(index.isBlockedOutside(outsideWrite, new Set([parent]))).toBe(true); // `same`, below it
    expect(index.isBlockedOutside(outsideWrite, new Set([parent, same]))).toBe(false);
  });
});
