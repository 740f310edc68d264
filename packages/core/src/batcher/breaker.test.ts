import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './breaker.js';

describe('CircuitBreaker', () => {
  const options = { failures: 3, openMs: 1_000, maxOpenMs: 3_000 };

  it('opens after consecutive failures only, and a success in between resets the count', () => {
    const changes: string[] = [];
    const b = new CircuitBreaker(options, (s) => changes.push(s));
    b.failed(0, 0);
    b.failed(0, 0);
    b.succeeded();
    b.failed(0, 0);
    b.failed(0, 0);
    expect(b.state(0)).toBe('closed');
    b.failed(10, 10);
    expect(b.state(10)).toBe('open');
    expect(b.mayCall(10)).toBe(false);
    expect(b.retryInMs(10)).toBe(1_000);
    expect(changes).toEqual(['open']);
  });

  it('lets one probe through when half-open; its success closes the breaker', () => {
    const b = new CircuitBreaker(options);
    for (let i = 0; i < 3; i++) b.failed(0, 0);
    expect(b.state(999)).toBe('open');
    expect(b.state(1_000)).toBe('half-open');
    expect(b.mayCall(1_000)).toBe(true);
    expect(b.mayCall(1_000)).toBe(false);
    b.succeeded();
    expect(b.state(1_000)).toBe('closed');
    expect(b.isFresh).toBe(true);
  });

  it('opens again for twice as long when the probe fails, up to the cap', () => {
    const b = new CircuitBreaker(options);
    for (let i = 0; i < 3; i++) b.failed(0, 0);
    let now = 1_000;
    for (const expected of [2_000, 3_000, 3_000]) {
      expect(b.mayCall(now)).toBe(true);
      b.failed(now, now);
      expect(b.retryInMs(now)).toBe(expected);
      now += expected;
    }
  });

  it('ignores a straggler sent before it opened: no longer open time, the probe still out', () => {
    const b = new CircuitBreaker(options);
    for (let i = 1; i <= 3; i++) b.failed(i * 10, i * 10);
    expect(b.state(30)).toBe('open');
    // Sent at 25, before the breaker opened at 30, failing once it is half-open.
    expect(b.mayCall(1_030)).toBe(true);
    b.failed(1_040, 25);
    expect([b.state(1_040), b.mayCall(1_040)]).toEqual(['half-open', false]);
    // The real probe's failure doubles the open time.
    b.failed(1_050, 1_030);
    expect(b.retryInMs(1_050)).toBe(2_000);
  });

  it('keeps the probe out when a straggler sent before it opened ends with nothing learnt (a 429)', () => {
    const b = new CircuitBreaker(options);
    for (let i = 1; i <= 3; i++) b.failed(i * 10, i * 10);
    expect(b.mayCall(1_030)).toBe(true);
    b.released(25);
    expect(b.mayCall(1_040)).toBe(false);
    // The probe itself (sent after the breaker opened) frees its slot.
    b.released(1_030);
    expect(b.mayCall(1_040)).toBe(true);
  });

  it('frees the probe slot when the probe ends with nothing learnt', () => {
    const b = new CircuitBreaker(options);
    for (let i = 0; i < 3; i++) b.failed(0, 0);
    expect(b.mayCall(1_000)).toBe(true);
    b.released();
    expect(b.mayCall(1_000)).toBe(true);
  });

  it('counts calls that failed together, on one hiccup, as one failure', () => {
    const b = new CircuitBreaker(options);
    // Ten calls sent at 0 all time out at 100: one failure.
    for (let i = 0; i < 10; i++) b.failed(100, 0);
    expect(b.state(100)).toBe('closed');
    // Two more rounds, each sent after the previous failure came back: three in a row.
    b.failed(200, 150);
    b.failed(300, 250);
    expect(b.state(300)).toBe('open');
  });

  it('never opens with a threshold of 0', () => {
    const b = new CircuitBreaker({ ...options, failures: 0 });
    for (let i = 0; i < 100; i++) b.failed(0, 0);
    expect(b.state(0)).toBe('closed');
  });
});

describe('CircuitBreaker, exact answers', () => {
  const options = { failures: 3, openMs: 1_000, maxOpenMs: 3_000 };

  it('says 0 ms to wait whenever it is not open, never a negative time', () => {
    const b = new CircuitBreaker(options);
    expect(b.retryInMs(5_000)).toBe(0);
    for (let i = 0; i < 3; i++) b.failed(5_000, 5_000);
    expect(b.retryInMs(5_400)).toBe(600);
    // Half-open well after the open time ended, then closed by the probe's success.
    expect(b.retryInMs(9_000)).toBe(0);
    expect(b.mayCall(9_000)).toBe(true);
    b.succeeded();
    expect(b.retryInMs(9_500)).toBe(0);
  });

  it('is fresh only while closed with no failure counted', () => {
    const b = new CircuitBreaker(options);
    expect(b.isFresh).toBe(true);
    b.failed(10, 0);
    // Closed, but one failure counts toward opening: not what a fresh breaker would do.
    expect(b.state(10)).toBe('closed');
    expect(b.isFresh).toBe(false);
    b.succeeded();
    expect(b.isFresh).toBe(true);
    for (let i = 0; i < 3; i++) b.failed(100 * (i + 1), 100 * i + 50);
    expect(b.state(300)).toBe('open');
    expect(b.isFresh).toBe(false);
    expect(b.state(1_300)).toBe('half-open');
    expect(b.isFresh).toBe(false);
  });
});
