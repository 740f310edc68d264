// Cheap recording for per-call metrics: prom-client hashes a label object on every inc() or observe(),
// even through labels() children, several times per call. Counters are tallied here in plain numbers
// and added to prom-client when it is scraped; histograms' label sets are resolved once.

import type { Counter } from 'prom-client';

/**
 * Counter increments kept as plain numbers per label set between scrapes, added to the prom-client
 * counter when it is collected: the same totals at every scrape, without a label hash per call.
 */
export class Tally<L extends string> {
  readonly #pending = new Map<string, { readonly labels: Partial<Record<L, string>>; n: number }>();

  /** One more for the label set `key`; `labels` is called only the first time a key is seen. */
  add(key: string, labels: () => Partial<Record<L, string>>): void {
    const entry = this.#pending.get(key);
    if (entry) entry.n += 1;
    else this.#pending.set(key, { labels: labels(), n: 1 });
  }

  flushInto(counter: Counter<L>): void {
    for (const entry of this.#pending.values()) {
      if (entry.n === 0) continue;
      counter.inc(entry.labels, entry.n);
      entry.n = 0;
    }
  }
}

/** A label set's series, resolved on first use and kept (label values here come from small fixed sets). */
export function bound<K, V>(resolve: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = resolve(key);
      cache.set(key, value);
    }
    return value;
  };
}
