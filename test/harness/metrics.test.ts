import { describe, expect, it } from 'vitest';
import { series, total } from './metrics.js';

const TEXT = [
  '# HELP x_total calls',
  'x_total{reason="429"} 3',
  'x_total{reason="500"} 4',
  'plain 7',
  'plain_more 9',
  '',
].join('\n');

describe('metrics helpers', () => {
  it('reads one series by its exact name and labels', () => {
    expect(series(TEXT, 'x_total{reason="429"}')).toBe(3);
    expect(series(TEXT, 'plain')).toBe(7);
  });

  it('answers NaN for a series not exposed', () => {
    expect(series(TEXT, 'x_total{reason="503"}')).toBeNaN();
  });

  it('sums a metric over its label sets, and not over longer names', () => {
    expect(total(TEXT, 'x_total')).toBe(7);
    expect(total(TEXT, 'plain')).toBe(7);
  });
});
