// infra/grafana/batch-proxy.json against what the proxy really exports: a real proxy process is driven
// through batching, pacing, a retry, collapsed reads and shedding, then scraped, and every query of
// the dashboard must name series (and labels) that the scrape holds.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'sk_grafana';
/** Labels Prometheus adds to every series at scrape time. */
const TARGET_LABELS = ['instance', 'job'];

interface Target {
  expr: string;
  legendFormat?: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
}

const dashboard = JSON.parse(readFileSync(`${ROOT}infra/grafana/batch-proxy.json`, 'utf8')) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');
const exprs: Array<{ where: string; expr: string; legendFormat?: string | undefined }> = [
  ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, ...t }))),
  ...dashboard.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => ({
      where: `variable ${v.name}`,
      expr: typeof v.query === 'string' ? v.query : (v.query?.query ?? ''),
    })),
];

/** Series name -> label names seen on it. */
type Scrape = Map<string, Set<string>>;

function parseExposition(text: string): Scrape {
  const series: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!match?.[1]) throw new Error(`unparsable exposition line: ${line}`);
    const labels = series.get(match[1]) ?? new Set<string>();
    for (const l of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g))
      if (l[1]) labels.add(l[1]);
    series.set(match[1], labels);
  }
  return series;
}

/** The proxy's own families and the runtime ones (Node's event loop, heap, GC; the process). */
const metricNames = (expr: string) => [
  ...new Set(expr.match(/\b(?:batch_proxy|nodejs|process)_[a-z0-9_]+\b/g) ?? []),
];
/** Labels grouped by (`by (...)`) or matched (`{name=...}`) in a PromQL expression. */
function labelsUsed(expr: string): { grouped: string[]; matched: string[] } {
  const grouped = [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) =>
    (m[1] ?? '').split(',').map((s) => s.trim()),
  );
  const matched = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
    [...(m[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] ?? ''),
  );
  return { grouped: grouped.filter(Boolean), matched };
}

let upstream: FakeUpstream;
let proxy: ProxyProcess;
let scrape: Scrape;
let scrapeText: string;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apps: { app1: SECRET } });
  proxy = await startProxyProcess({
    UPSTREAM_URL: upstream.url,
    LOG_LEVEL: 'warn',
    // One batch call per 500 ms (denials, waits) and a 4-op queue (shedding): every instrument gets a
    // series without depending on how fast this machine is.
    BATCH_RATE_PER_SEC: '2',
    BATCH_BURST: '1',
    QUEUE_MAX_OPS: '4',
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${proxy.url}/v1/app1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${SECRET}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const tick = () => new Promise((resolve) => setTimeout(resolve, 50));
  expect(await call('PUT', '/users/seed', { name: 'seed' })).toBe(200);
  // A 503 on the batch call: the GET is retried (requeued, reason "retry").
  upstream.faults.queue.push({ status: 503, on: 'any' });
  expect(await call('GET', '/users/seed')).toBe(200);
  // A write held upstream for 500 ms keeps the batch bucket closed; behind it two identical GETs
  // collapse into one queued op, and writes overflow the 4-op queue and are shed.
  upstream.faults.queue.push({ delayMs: 500, on: 'any' });
  const held = call('PUT', '/users/held', { name: 'held' });
  await tick();
  const reads = [call('GET', '/users/seed'), call('GET', '/users/seed')];
  await tick();
  const writes = Array.from({ length: 10 }, (_, i) => call('PUT', `/users/u${i}`, { name: `u${i}` }));
  const statuses = await Promise.all([held, ...reads, ...writes]);
  expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
  expect(statuses).toContain(429);
  const res = await fetch(`${proxy.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  scrapeText = await res.text();
  scrape = parseExposition(scrapeText);
});

afterAll(async () => {
  const code = proxy ? await proxy.stop() : 0;
  await upstream?.close();
  expect(code).toBe(0);
});

describe('infra/grafana/batch-proxy.json', () => {
  it('has panels for the questions docs/metrics.md answers', () => {
    const titles = queryPanels.map((p) => p.title.toLowerCase());
    for (const wanted of [
      'requests by kind and status',
      'ops answered by lane',
      'batch size p50 / p95',
      'queue wait p50 / p99',
      'upstream calls by status',
      'limiter denials',
      'queued and in-flight ops',
      'redis fallback',
      'shed by the proxy',
      'caller latency p50 / p99',
      'not batched, by reason',
      'event-loop delay p99 and utilisation',
      'heap and resident memory',
      'cpu and gc',
    ]) {
      expect(titles).toContain(wanted);
    }
  });

  it('is well formed: unique ids, panels inside the 24-column grid, one datasource variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    for (const p of queryPanels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, meant literally
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.map((v) => v.name)).toContain('datasource');
  });

  it('queries only series the running proxy exports', () => {
    for (const { where, expr } of exprs) {
      const names = metricNames(expr);
      expect(names, `${where}: ${expr}`).not.toHaveLength(0);
      for (const name of names) {
        expect(scrape.has(name), `${where}: ${name} is not in the scrape`).toBe(true);
      }
    }
  });

  it('groups, matches and names legends only by labels those series carry', () => {
    for (const { where, expr, legendFormat } of exprs) {
      const available = new Set(TARGET_LABELS);
      for (const name of metricNames(expr)) for (const l of scrape.get(name) ?? []) available.add(l);
      const { grouped, matched } = labelsUsed(expr);
      for (const label of [...grouped, ...matched]) {
        expect(
          available.has(label),
          `${where}: label "${label}" not on ${metricNames(expr).join(', ')}`,
        ).toBe(true);
      }
      for (const m of (legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
        expect(grouped, `${where}: legend {{${m[1]}}} is not a grouping label`).toContain(m[1]);
      }
    }
  });

  it('reads a scrape by Prometheus conventions: base units, the service named, no scope label', () => {
    expect(scrapeText).toMatch(/^target_info\{service_name="batch-proxy",service_version="[^"]+"\} 1$/m);
    expect(scrapeText).not.toContain('otel_scope_name');
    for (const name of scrape.keys()) {
      if (!name.startsWith('batch_proxy_')) continue;
      // Durations in seconds: the old millisecond histograms had no unit suffix.
      expect(name, 'a duration without _seconds').not.toMatch(/_(wait|duration)(_bucket|_sum|_count)?$/);
    }
  });

  it('shows every metric family the proxy exports', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr)));
    const family = (series: string) => series.replace(/_(bucket|sum|count)$/, '');
    const usedFamilies = new Set([...used].map(family));
    const exported = [...scrape.keys()].filter((s) => s.startsWith('batch_proxy_')).map(family);
    expect([...new Set(exported)].filter((f) => !usedFamilies.has(f))).toEqual([]);
  });
});
