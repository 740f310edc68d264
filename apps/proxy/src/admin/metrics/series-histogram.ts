// A histogram for per-call observations. prom-client's Histogram hashes its label object on every
// observe(), even through a labels() child: two observations per batched call cost ~2 % of the proxy's
// CPU per call (issue #17). Here a label set is resolved to its series once, and an observation is a
// bucket search and three additions. It registers in prom-client's registry like any of its metrics
// and gives the same values in the same order, so the exposition and `get()` readers are unchanged
// (series-histogram.test.ts compares the two).

import type { Registry } from 'prom-client';

type Labels<L extends string> = Readonly<Record<L, string>>;

/** One line of the exposition, in prom-client's shape (its registry renders these). */
export interface HistogramValue {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName: string;
  readonly exemplar?: null;
}

export interface HistogramSnapshot<V = HistogramValue> {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly values: V[];
  readonly aggregator: 'sum';
}

type Shared<L extends string> = HistogramValue & { readonly sharedLabels: Labels<L> };

export interface SeriesHistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Upper bounds, ascending; `+Inf` is implied. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

/** One label set's counts: per bucket (not cumulative; the last is above every bound), sum and count. */
export class Series {
  readonly #bounds: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count += 1;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

export class SeriesHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly L[];
  readonly #bounds: readonly number[];
  /** By the label set in labelNames' order: a key made once per label set, on its first use. */
  readonly #series = new Map<string, { readonly labels: Labels<L>; readonly series: Series }>();

  constructor(options: SeriesHistogramOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#bounds = [...options.buckets];
    for (const register of options.registers) register.registerMetric(this as never);
  }

  /** The series of one label set, made on first use: keep it, and observe through it. */
  labels(labels: Labels<L>): Series {
    for (const name of Object.keys(labels)) {
      if (!this.#labelNames.includes(name as L)) {
        throw new Error(`Added label "${name}" is not included in initial labelset`);
      }
    }
    // Its labels in labelNames' order, whatever the order given: one series and one rendering per set.
    const own = {} as Record<L, string>;
    for (const name of this.#labelNames) if (labels[name] !== undefined) own[name] = labels[name];
    const key = JSON.stringify(own);
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { labels: own, series: new Series(this.#bounds) };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  /** Every known series at 0 from start. */
  zero(labels: Labels<L>): void {
    this.labels(labels);
  }

  /**
   * Every series back to 0, kept: callers hold their series (resolved once), so a series dropped here
   * would never be written again. (prom-client's Histogram drops them; the series here stay, at 0.)
   */
  reset(): void {
    for (const { series } of this.#series.values()) series.reset();
  }

  /** prom-client's shape for the text exposition: `le` as the label, the series' labels shared. */
  async getForPromString(): Promise<HistogramSnapshot<Shared<L>>> {
    const values: Shared<L>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, series } of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += series.counts[i] as number;
        values.push({
          labels: { le },
          sharedLabels: labels,
          value: cumulative,
          metricName: bucket,
          exemplar: null,
        });
      });
      values.push({
        labels: { le: '+Inf' },
        sharedLabels: labels,
        value: series.count,
        metricName: bucket,
        exemplar: null,
      });
      values.push({ labels: {}, sharedLabels: labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({
        labels: {},
        sharedLabels: labels,
        value: series.count,
        metricName: `${this.name}_count`,
      });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  /** prom-client's shape for readers: each value's labels with the series' own. */
  async get(): Promise<HistogramSnapshot> {
    const data = await this.getForPromString();
    const values = data.values.map(
      ({ sharedLabels, ...rest }): HistogramValue => ({
        ...rest,
        labels: { ...rest.labels, ...sharedLabels },
      }),
    );
    return { ...data, values };
  }
}
