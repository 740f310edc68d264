import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesHistogram } from './series-histogram.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1];

function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  const options = {
    name: 'h_seconds',
    help: 'a histogram',
    labelNames: ['kind', 'lane'] as const,
    buckets: BUCKETS,
  };
  return {
    theirs,
    ours,
    reference: new Histogram({ ...options, labelNames: [...options.labelNames], registers: [theirs] }),
    subject: new SeriesHistogram({ ...options, registers: [ours] }),
  };
}

describe('SeriesHistogram', () => {
  it("renders and reads exactly as prom-client's Histogram for the same observations", async () => {
    // Many runs of seeded random observations (the edges of each bucket among them), with and without
    // series zeroed first: prom-client's own Histogram is the expected value.
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const labels = ['a', 'b', 'c'];
    for (let run = 0; run < 200; run++) {
      const { theirs, ours, reference, subject } = pair();
      const zeroed = Array.from({ length: Math.floor(random() * 3) }, () => pick(labels));
      for (const kind of zeroed) {
        reference.zero({ kind, lane: 'a' });
        subject.zero({ kind, lane: 'a' });
      }
      const count = Math.floor(random() * 40);
      for (let i = 0; i < count; i++) {
        const kind = pick(labels);
        const lane = pick(labels);
        const value = random() < 0.3 ? pick([...BUCKETS, 0, 2]) : random() * 3;
        reference.labels({ kind, lane }).observe(value);
        subject.labels({ lane, kind }).observe(value);
      }
      expect(await ours.metrics()).toBe(await theirs.metrics());
      expect(await subject.get()).toEqual(await reference.get());
    }
  });

  it('keeps one series per label set, whatever the order of its labels', () => {
    const { subject } = pair();
    expect(subject.labels({ kind: 'a', lane: 'b' })).toBe(subject.labels({ lane: 'b', kind: 'a' }));
    expect(subject.labels({ kind: 'a', lane: 'b' })).not.toBe(subject.labels({ kind: 'b', lane: 'a' }));
  });

  it('refuses a label it was not given, and a value that is not a number', () => {
    const { subject } = pair();
    expect(() => subject.labels({ kind: 'a', other: 'x' } as never)).toThrow(/"other"/);
    expect(() => subject.labels({ kind: 'a', lane: 'b' }).observe(Number.NaN)).toThrow(TypeError);
  });

  it('zeroes every series on reset, and a series kept by its caller still counts afterwards', async () => {
    const { ours, subject } = pair();
    const kept = subject.labels({ kind: 'a', lane: 'b' });
    kept.observe(0.5);
    ours.resetMetrics();
    const zeroed = (await subject.get()).values;
    expect(zeroed.map((v) => v.value)).toEqual(new Array(BUCKETS.length + 3).fill(0));
    kept.observe(0.002);
    const after = await subject.get();
    expect(after.values.find((v) => v.metricName === 'h_seconds_count')?.value).toBe(1);
    expect(after.values.find((v) => v.metricName === 'h_seconds_sum')?.value).toBe(0.002);
    expect(after.values.find((v) => v.labels.le === 0.005)?.value).toBe(1);
    expect(after.values.find((v) => v.labels.le === 0.001)?.value).toBe(0);
  });
});
