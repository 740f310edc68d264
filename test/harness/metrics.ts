// Reading the proxy's Prometheus exposition in e2e tests.

import type { ProxyProcess } from './process.js';

/** The admin listener's /metrics text. */
export async function metrics(proxy: ProxyProcess): Promise<string> {
  return fetch(`${proxy.adminUrl}/metrics`).then((r) => r.text());
}

/** One series' value, `name` with its labels exactly as exposed (e.g. `x_total{reason="429"}`). */
export function series(text: string, name: string): number {
  const escaped = name.replace(/[{}"]/g, (c) => `\\${c}`);
  const value = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)?.[1];
  return value === undefined ? Number.NaN : Number(value);
}

/** The sum of a metric over all its label sets. */
export function total(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}
