// The live status page in a real browser: headless Chromium (Debian's `chromium` package) driven by
// playwright-core loads GET / from the admin listener of the real proxy process while a bounded load
// runs, and the numbers it shows move: callers' own statuses (a 404 inside a batch, a pass-through),
// their latency, the burst forecast, sheds apart from upstream 429s. The screenshot lands in
// test/.artifacts/status-page.png.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusJson } from '../../apps/proxy/src/admin/status/status.js';
import { useProxy } from '../harness/use.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const APPS = { app1: 'sk_status_secret_app1', app2: 'sk_status_secret_app2' };
/**
 * App ids that are markup: valid path segments (no slash), percent-encoded in the URL. If
 * the page wrote one as HTML, an element would appear, and its handler would set `window.__injected`
 * (were the CSP ever to let it run).
 */
const HOSTILE_APPS = [
  '<img src=x onerror=window.__injected=1>',
  '"><svg onload=window.__injected=2>',
  "'><b>bold<i>it&amp;",
];
// Per app: 4 batch calls/s of 10 ops plus 5 single calls/s = 45 ops/s. The load offers 50/s per app
// for 3 s (300 calls): ops queue for the next batch token, batches leave nearly full, both lanes show
// and the queue drains within a second of the end.
const BATCH = { ratePerSec: 4, burst: 1 };
const REST = { ratePerSec: 5, burst: 5 };
const CALLS_PER_APP = 150;
const LOAD_MS = 3_000;

let context: BrowserContext;
let userDataDir: string;

beforeAll(() => {
  // No skip: a machine without the browser fails here, saying what to install.
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: the status page test needs Debian's chromium (apt-get install -y chromium)`,
    );
  }
});

const hostile = Object.fromEntries(HOSTILE_APPS.map((appId) => [appId, 'sk_status_secret_hostile']));
const { proxy, upstream } = useProxy(
  ({ redis }) => ({
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
    BATCH_RATE_PER_SEC: String(BATCH.ratePerSec),
    BATCH_BURST: String(BATCH.burst),
    REST_RATE_PER_SEC: String(REST.ratePerSec),
    REST_BURST: String(REST.burst),
  }),
  {
    upstream: { apps: { ...APPS, ...hostile }, limits: { batch: BATCH, rest: REST } },
    redis: true,
    exitCode: 0,
  },
);

// After the proxy has started; closed before it stops.
beforeAll(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), 'status-page-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    timeout: 15_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** Offers CALLS_PER_APP writes per app, spread evenly over LOAD_MS; resolves with their statuses. */
async function load(): Promise<number[]> {
  const calls: Array<Promise<number>> = [];
  const waves = 30;
  for (let w = 0; w < waves; w++) {
    for (const [appId, secret] of Object.entries(APPS)) {
      for (let i = 0; i < CALLS_PER_APP / waves; i++) {
        const id = `w${w}-${i}`;
        calls.push(
          fetch(`${proxy.url}/v1/${appId}/users/${id}`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
            body: JSON.stringify({ name: id }),
          }).then(async (res) => {
            await res.arrayBuffer();
            return res.status;
          }),
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, LOAD_MS / waves));
  }
  return Promise.all(calls);
}

/** A new tab, and the page errors and console errors it reports (a CSP refusal is a console error). */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return { page, problems };
}

const number = async (page: Page, selector: string) =>
  Number((await page.locator(selector).innerText()).replace(/,/g, ''));

describe('the live status page', () => {
  it('shows batching, queues, limiter buckets and Redis mode moving under load', async () => {
    const { page, problems } = await openPage();

    await page.goto(`${proxy.adminUrl}/`, { timeout: 10_000 });
    // The first poll rendered: the CSP let the inline script run and status.json answered.
    await expect
      .poll(() => page.locator('#redis-mode').innerText(), { timeout: 5_000 })
      .toBe('Redis: shared');

    const loadStart = performance.now();
    const running = load();
    // A caller's own 404 inside a batch (the batch call itself is a 200), and a pass-through.
    const [app, secret] = Object.entries(APPS)[0] ?? [];
    const auth = { authorization: `Bearer ${secret}` };
    const missing = `${proxy.url}/v1/${app}/users/nobody`;
    const others = Promise.all([
      fetch(missing, { headers: auth }),
      fetch(missing, { headers: { ...auth, 'x-batch-bypass': '1' } }),
    ]).then((all) => Promise.all(all.map(async (r) => [r.status, r.headers.get('server-timing')] as const)));
    await page.waitForTimeout(1_200);
    const first = await number(page, '#ops-total');
    await expect
      .poll(() => number(page, '#ops-total'), { timeout: 5_000, interval: 250 })
      .toBeGreaterThan(first);
    // Fill and queue depth render as numbers while the load is on.
    await expect.poll(() => page.locator('#fill').innerText(), { timeout: 5_000 }).toMatch(/^\d+\.\d$/);
    await expect.poll(() => number(page, '#queued'), { timeout: 5_000, interval: 250 }).toBeGreaterThan(0);
    // One row per app with both buckets read from the limiter (Redis).
    await expect.poll(() => page.locator('#apps-body tr').count(), { timeout: 5_000 }).toBe(2);
    expect(await page.locator('#apps-body td.app').allInnerTexts()).toEqual(
      expect.arrayContaining(['app1', 'app2']),
    );
    const tokens = await page.locator('#apps-body tr').first().locator('td').nth(3).innerText();
    expect(tokens).toMatch(/^\d+ \/ 1$/);
    // The charts drew a line from the sampled history.
    expect(await page.locator('#chart-ops path').first().getAttribute('d')).toMatch(/^M[\d.]+ [\d.]+L/);
    // Each app's burst forecast reads as one of its states (the math is in status-forecast.test.ts).
    for (const cell of await page.locator('#apps-body td.forecast').allInnerTexts())
      expect(cell).toMatch(
        /^(in \d+ (s|min|h) \(-[\d.]+\/s\)|not draining|spent: paced at [45]\/s|measuring)$/,
      );
    // Caller latency from the caller histogram: p50 and p99 (ms, or s once calls queue for seconds).
    await expect
      .poll(() => page.locator('#latency-p99').innerText(), { timeout: 5_000 })
      .toMatch(/^[\d.]+ m?s$/);
    expect(await page.locator('#latency-p50').innerText()).toMatch(/^[\d.]+ m?s$/);

    // The picture is taken late in the load, once the history shows the steady state.
    await page.waitForTimeout(Math.max(0, loadStart + LOAD_MS - 200 - performance.now()));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });

    const statuses = await running;
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // The batched 404 (Server-Timing names its batch) and the bypass (named as a pass-through).
    const [batched404, passed404] = await others;
    expect(batched404?.[0]).toBe(404);
    expect(batched404?.[1]).toMatch(/lane;desc="(batch|single)"/);
    expect(passed404).toEqual([404, 'passthrough;desc="bypass"']);
    // Callers' own statuses: the 404s show, the batched one and the pass-through apart.
    const row404 = page.locator('#callers-body tr', {
      has: page.locator('td:first-child', { hasText: /^404$/ }),
    });
    await expect
      .poll(async () => (await row404.locator('td').allInnerTexts()).join(' '), { timeout: 3_000 })
      .toBe('404 upstream 1 1 0 0');
    expect(await page.locator('#reasons-body td').allInnerTexts()).toEqual(['bypass', '1']);
    // Sheds are their own tile and chart, apart from upstream 429s; this load sheds nothing.
    expect(await page.locator('#shed-minute').innerText()).toBe('0');
    expect(await page.locator('#chart-r429 .label').innerText()).toBe('upstream 429s / s');
    expect(await page.locator('#chart-shed .label').innerText()).toMatch(/^shed by the proxy/);
    // Every caller counted, pass-throughs too: the load, the two extra calls.
    await expect.poll(() => number(page, '#ops-total'), { timeout: 3_000 }).toBe(statuses.length + 2);
    // Both lanes carried calls and the upstream answered 200s (visible in the last-minute table).
    await expect
      .poll(() => page.locator('#lanes-body tr').nth(1).locator('td').nth(2).innerText(), { timeout: 3_000 })
      .not.toBe('0');
    expect(await page.locator('#status-body td').first().innerText()).toBe('200');

    // No secret or Authorization value anywhere on the page or in its data.
    const html = await page.content();
    const json = await (await fetch(`${proxy.adminUrl}/status.json`)).text();
    for (const text of [html, json]) {
      for (const secret of Object.values(APPS)) expect(text).not.toContain(secret);
      expect(text.toLowerCase()).not.toContain('bearer');
    }
    // status.json carries the same figures for scripts.
    const data = JSON.parse(json) as StatusJson;
    expect(data.lastMinute.callers?.byKind).toEqual({
      batched: statuses.length + 1,
      passthrough: 1,
      'client-batch': 0,
      rejected: 0,
    });
    expect(data.lastMinute.callers?.latency.all.p99Ms).toBeGreaterThan(0);
    expect(data.lastMinute.shed).toEqual({ queueFull: 0, deadline: 0, circuitOpen: 0 });
    for (const app of data.apps)
      expect(['draining', 'not-draining', 'empty', 'measuring']).toContain(app.batch.forecast.state);
    expect(problems).toEqual([]);
  }, 30_000);

  it('shows hostile app ids as text: no element injected, no script run', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${proxy.adminUrl}/`, { timeout: 10_000 });
    // Each hostile app's first batch call is held by the upstream, so the app stays in flight (and
    // listed) across a few of the page's polls; its caller is answered afterwards.
    for (const appId of HOSTILE_APPS) upstream.faults.queue.push({ appId, delayMs: 4_000 });
    const calls = HOSTILE_APPS.map((appId) =>
      fetch(`${proxy.url}/v1/${encodeURIComponent(appId)}/users/u1`, {
        headers: { authorization: 'Bearer sk_status_secret_hostile' },
      }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      }),
    );
    // Every id shows, verbatim, as the text of its app cell.
    await expect
      .poll(() => page.locator('#apps-body td.app').allTextContents(), { timeout: 3_500, interval: 200 })
      .toEqual(expect.arrayContaining(HOSTILE_APPS));
    // The table holds only what the page itself makes: rows, cells and the bucket gauges.
    const tags = await page.$$eval('#apps-body *', (all) => [...new Set(all.map((e) => e.tagName))]);
    expect(tags.filter((tag) => !['TR', 'TD', 'SPAN'].includes(tag))).toEqual([]);
    // Nothing anywhere on the page came from an app id: no image, no handler attribute, no flag set.
    expect(await page.locator('img, b, i, [onerror], [onload]').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __injected?: unknown }).__injected)).toBeUndefined();
    expect(await Promise.all(calls)).toEqual(HOSTILE_APPS.map(() => 404));
    expect(problems).toEqual([]);
    await page.close();
  }, 20_000);
});
