// The log destination writes at most once per event-loop turn (a batch's lines together), keeps
// order, and writes what is pending when flushed (the exit paths).

import { describe, expect, it } from 'vitest';
import { TurnBatchedDestination } from './logging.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('TurnBatchedDestination', () => {
  it('writes the lines of one turn in one write, in order, at the end of the turn', async () => {
    const writes: string[] = [];
    const d = new TurnBatchedDestination({ write: (chunk) => writes.push(chunk) });
    d.write('a\n');
    d.write('b\n');
    d.write('c\n');
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(['a\nb\nc\n']);
    d.write('d\n');
    await nextTurn();
    expect(writes).toEqual(['a\nb\nc\n', 'd\n']);
  });

  it('flush writes what is pending at once, then lets the sink write it out synchronously', () => {
    const writes: string[] = [];
    let synced = 0;
    const d = new TurnBatchedDestination({
      write: (chunk) => writes.push(chunk),
      flushSync: () => {
        synced++;
      },
    });
    d.write('last\n');
    let flushed = false;
    d.flush(() => {
      flushed = true;
    });
    expect(writes).toEqual(['last\n']);
    expect(synced).toBe(1);
    expect(flushed).toBe(true);
  });

  it('flush calls back only once an asynchronous sink has written everything', () => {
    const writes: string[] = [];
    let written: (() => void) | undefined;
    const d = new TurnBatchedDestination({
      write: (chunk) => writes.push(chunk),
      afterWrites: (cb) => {
        written = cb;
      },
    });
    d.write('stopped\n');
    let flushed = false;
    d.flush(() => {
      flushed = true;
    });
    // Handed to the sink in order, behind what it is still writing, not written around it.
    expect(writes).toEqual(['stopped\n']);
    expect(flushed).toBe(false);
    written?.();
    expect(flushed).toBe(true);
  });

  it('survives a sink that cannot flush (not open, or closed)', () => {
    const d = new TurnBatchedDestination({
      write: () => {},
      flushSync: () => {
        throw new Error('sonic boom is not ready yet');
      },
    });
    d.write('x\n');
    expect(() => d.flushSync()).not.toThrow();
  });
});
