// The metrics the documentation names against what a started proxy really exposes (issue #32): the
// built proxy process, in front of the fake upstream, scraped on its admin port. Both ways: every
// metric a doc names (README.md, docs/*.md) is in /metrics with the labels and label values the doc
// gives it, and every `batch_proxy_*` family /metrics has is a row of docs/metrics.md's table, with
// its type, its labels, and every label value it has at 0 before the first event (SPEC §10: "every
// known series present at 0 from start", which the table promises too).
//
// Two proxies: the default (in-process limiter, fixed rates) and a fleet member (REDIS_URL, a real
// redis-server) with PACING=adaptive, so a series that only the Redis limiter or the pacer brought
// would be seen. Each is scraped fresh (before any call: the series that exist at 0) and again after
// a batched call and a pass-through (the series whose labels are open: status, app).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { type RedisProcess, startRedis } from '../harness/redis.js';
import { codeSpans, doc, docs, expandBraces, tableRows } from './markdown.js';

/**
 * Names a doc gives on purpose that /metrics must NOT have: docs/metrics.md's "Renamed from" table
 * lists the old names dashboards may still use. Checked to be absent.
 */
const GONE: Readonly<Record<string, string>> = {
  batch_proxy_queue_wait_bucket: 'old name (ms), renamed to batch_proxy_queue_wait_seconds',
  batch_proxy_upstream_duration_bucket: 'old name (ms), renamed to batch_proxy_upstream_duration_seconds',
  batch_proxy_limiter_wait_bucket: 'old name (ms), renamed to batch_proxy_limiter_wait_seconds',
};

/** Selectors of the "Renamed from" table that show an old label value, checked to be gone. */
const GONE_SELECTORS: Readonly<Record<string, string>> = {
  'target_info{service_name="unknown_service:node",…}': 'the OpenTelemetry exporter named the service so',
};

/** Labels whose values are not a closed set the docs could list. */
const OPEN_LABELS = new Set(['le', 'app', 'status', 'service_version']);

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

interface Scrape {
  /** Family name → its `# TYPE`. */
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

function parse(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) throw new Error(`unparsed /metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels });
  }
  return { types, samples };
}

/** The family a sample belongs to: a histogram's `_bucket`/`_sum`/`_count` are its own family's. */
function familyOf(name: string, types: ReadonlyMap<string, string>): string {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && types.get(base) === 'histogram' ? base : name;
}

/** Label name → the values seen, per family. */
function labelValues(scrapes: readonly Scrape[]): Map<string, Map<string, Set<string>>> {
  const out = new Map<string, Map<string, Set<string>>>();
  for (const { types, samples } of scrapes)
    for (const s of samples) {
      const family = familyOf(s.name, types);
      const labels = out.get(family) ?? new Map<string, Set<string>>();
      out.set(family, labels);
      for (const [label, value] of Object.entries(s.labels)) {
        if (label === 'le') continue;
        labels.set(label, (labels.get(label) ?? new Set()).add(value));
      }
    }
  return out;
}

/**
 * Every metric a text names: `batch_proxy_*`, `nodejs_*`, `process_*`, `target_info`, brace groups
 * expanded (`nodejs_eventloop_lag_{p50,p99}_seconds`), with the selector that follows it if any
 * (`{lane="batch"}`, `{kind,status}`).
 */
function namedMetrics(text: string): Array<{ name: string; selector: string | undefined }> {
  const re =
    /\b((?:batch_proxy|nodejs|process)_(?:[a-z0-9_]|\{[a-z0-9_,]+\}(?=[a-z0-9_]))+|target_info)(\{[^}\n]*\})?/g;
  return Array.from(text.matchAll(re)).flatMap((m) =>
    expandBraces(m[1] as string).map((name) => ({ name, selector: m[2] })),
  );
}

/** A selector's labels and the values it names: `{a="x|y",b!="z"}` or a bare list `{a,b}`. */
function selectorLabels(selector: string): Array<{ label: string; values: string[] }> {
  const inner = selector.slice(1, -1).trim();
  if (inner === '') return [];
  if (!inner.includes('=')) return inner.split(',').map((label) => ({ label: label.trim(), values: [] }));
  return Array.from(inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"([^"]*)"/g), (m) => ({
    label: m[1] as string,
    values: (m[2] as string).split('|').filter((v) => v !== ''),
  }));
}

interface Mode {
  readonly name: string;
  fresh: Scrape;
  used: Scrape;
}

const SECRET = 'sk_docs_metrics';
const modes: Mode[] = [];
let upstream: FakeUpstream;
let redis: RedisProcess | undefined;
const proxies: ProxyProcess[] = [];

async function scrape(proxy: ProxyProcess): Promise<Scrape> {
  const res = await fetch(`${proxy.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  return parse(await res.text());
}

async function observe(name: string, env: Record<string, string>): Promise<void> {
  const proxy = await startProxyProcess({ UPSTREAM_URL: upstream.url, LOG_LEVEL: 'warn', ...env });
  proxies.push(proxy);
  const fresh = await scrape(proxy);
  const call = (headers: Record<string, string>) =>
    fetch(`${proxy.url}/v1/app1/users/u1`, { headers: { authorization: `Bearer ${SECRET}`, ...headers } });
  // One batched call and one pass-through: requests, upstream calls and per-app series get samples.
  for (const res of await Promise.all([call({}), call({ 'x-batch-bypass': '1' })])) {
    expect(res.status).toBe(404);
    await res.arrayBuffer();
  }
  modes.push({ name, fresh, used: await scrape(proxy) });
}

beforeAll(async () => {
  upstream = await startFakeUpstream({ apps: { app1: SECRET } });
  redis = await startRedis();
  await observe('default', {});
  await observe('Redis, adaptive pacing', {
    REDIS_URL: redis.url,
    PACING: 'adaptive',
    PACE_MAX_RATE_PER_SEC: '100',
  });
});

afterAll(async () => {
  for (const proxy of proxies) await proxy.stop();
  await redis?.stop();
  await upstream?.close();
});

const METRICS_MD = 'docs/metrics.md';

/** docs/metrics.md's metric table: the row of each family. */
function tableOfMetrics(): Map<string, { type: string; labels: string; meaning: string; row: string }> {
  const rows = tableRows(doc(METRICS_MD).text, 'metric', '## Metrics');
  return new Map(
    rows.map((cells) => {
      const [name = '', type = '', , labels = '', meaning = ''] = cells;
      return [name.replace(/`/g, ''), { type, labels, meaning, row: cells.join(' | ') }];
    }),
  );
}

describe('the metrics the docs name (docs/metrics.md and the rest)', () => {
  it('are all in /metrics, each with the labels and label values the doc gives it', () => {
    const scrapes = modes.flatMap((m) => [m.fresh, m.used]);
    const exposed = new Set(scrapes.flatMap((s) => [...s.types.keys(), ...s.samples.map((x) => x.name)]));
    const values = labelValues(scrapes);
    const problems: string[] = [];
    for (const { path, text } of docs())
      for (const { name, selector } of namedMetrics(text)) {
        if (name in GONE) continue;
        if (!exposed.has(name)) {
          problems.push(`${path}: ${name} is not in /metrics`);
          continue;
        }
        if (selector === undefined || `${name}${selector}` in GONE_SELECTORS) continue;
        const family = familyOf(name, scrapes[0]?.types ?? new Map());
        const seen = values.get(family) ?? new Map<string, Set<string>>();
        for (const { label, values: named } of selectorLabels(selector)) {
          if (label === 'le' || label === 'instance') continue; // histogram buckets; Prometheus' own
          const have = seen.get(label);
          if (!have) {
            problems.push(`${path}: ${name}${selector}: ${family} has no label ${label}`);
            continue;
          }
          if (OPEN_LABELS.has(label)) continue;
          for (const v of named)
            if (!have.has(v)) problems.push(`${path}: ${name}${selector}: ${label}="${v}" never seen`);
        }
      }
    expect(problems).toEqual([]);
  });

  it('leaves out the old names the "Renamed from" table lists', () => {
    const text = doc(METRICS_MD).text;
    for (const [name, why] of Object.entries(GONE)) {
      expect(text, `${name} (${why}) is no longer in ${METRICS_MD}: drop it from GONE`).toContain(name);
      for (const m of modes) expect(m.used.types.has(name), `${m.name}: ${name}`).toBe(false);
    }
    for (const [selector, why] of Object.entries(GONE_SELECTORS)) {
      expect(text, `${selector} (${why}) is no longer in ${METRICS_MD}: drop it`).toContain(selector);
      const [name, value] = /^(\w+)\{service_name="([^"]*)"/.exec(selector)?.slice(1) ?? [];
      for (const m of modes)
        expect(
          m.used.samples.filter((x) => x.name === name && x.labels.service_name === value),
          `${m.name}: ${selector}`,
        ).toEqual([]);
    }
  });
});

describe("docs/metrics.md's table against /metrics", () => {
  it('has a row for every batch_proxy_* family (and target_info) /metrics has, in every mode', () => {
    const table = tableOfMetrics();
    for (const m of modes) {
      const families = [...m.used.types.keys()].filter(
        (f) => f.startsWith('batch_proxy_') || f === 'target_info',
      );
      expect(families.length, m.name).toBeGreaterThan(20);
      expect(
        families.filter((f) => !table.has(f)),
        `${m.name}: families not in ${METRICS_MD}'s table`,
      ).toEqual([]);
    }
  });

  it('gives each family its type and its labels, and every label value it has at 0 from the first scrape', () => {
    const table = tableOfMetrics();
    const text = doc(METRICS_MD).text;
    /** A label's values may also be the first column of a table headed by the label (`| reason |`). */
    const tableOf = (label: string): string[] => {
      try {
        return tableRows(text, label).map((cells) => cells[0] as string);
      } catch {
        return [];
      }
    };
    const problems: string[] = [];
    for (const m of modes) {
      const atStart = labelValues([m.fresh]);
      const labels = labelValues([m.fresh, m.used]);
      for (const [family, row] of table) {
        const type = m.used.types.get(family);
        if (type === undefined) continue; // the test above names it
        if (row.type !== type)
          problems.push(`${m.name}: ${family}: type ${row.type} in the table, ${type} in /metrics`);
        const documented = new Set(codeSpans(row.labels));
        const exposed = labels.get(family);
        if (exposed) {
          const names = new Set(exposed.keys());
          if ([...names].sort().join() !== [...documented].sort().join())
            problems.push(
              `${m.name}: ${family}: labels ${[...documented]} in the table, ${[...names]} in /metrics`,
            );
        }
        for (const [label, values] of atStart.get(family) ?? [])
          for (const v of values)
            if (
              !OPEN_LABELS.has(label) &&
              !row.row.includes(`\`${v}\``) &&
              !row.row.includes(`${label}="${v}"`) &&
              !tableOf(label).includes(`\`${v}\``)
            )
              problems.push(
                `${m.name}: ${family}{${label}="${v}"} exists at 0 from start; its row does not name \`${v}\``,
              );
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });
});
