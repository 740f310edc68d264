// Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  selfMs: number;
  /** Share of the profile's busy time (everything but idle). */
  share: number;
}

/** `file:///…/node_modules/.pnpm/hono@…/node_modules/hono/dist/x.js` → `hono/dist/x.js`. */
function shortUrl(url: string, root: string): string {
  if (url === '') return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const path = url.replace(/^file:\/\//, '');
  return path.startsWith(root) ? path.slice(root.length + 1) : path;
}

/**
 * The proxy runs as one bundle (apps/proxy/bundle.mjs): each module in it starts with a
 * `// <path>` line. A bundle line is named by the module it falls in, so the table still says
 * which source a function came from (`hono/dist/x.js (main.js:123)`).
 */
const bundleModules = new Map<string, Array<{ line: number; path: string }>>();
function modulesOf(file: string): Array<{ line: number; path: string }> {
  let found = bundleModules.get(file);
  if (found) return found;
  found = [];
  try {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((text, i) => {
        const m = /^\/\/ ((?:\.\.\/)*[\w@./+-]+\.[cm]?js)$/.exec(text);
        if (m?.[1]) found?.push({ line: i, path: m[1].replace(/^(?:\.\.\/)+/, '') });
      });
  } catch {
    // Not readable (a node: builtin, or gone): shown as its URL.
  }
  bundleModules.set(file, found);
  return found;
}

function located(url: string, lineNumber: number, root: string): string {
  const short = shortUrl(url, root);
  const file = url.replace(/^file:\/\//, '');
  const modules = url.startsWith('file://') && !url.includes('/node_modules/') ? modulesOf(file) : [];
  let inside: string | undefined;
  for (const m of modules) {
    if (m.line > lineNumber) break;
    inside = m.path;
  }
  const bundle = `${short.split('/').pop()}:${lineNumber + 1}`;
  return inside ? `${shortUrl(inside, root)} (${bundle})` : `${short}:${lineNumber + 1}`;
}

/**
 * The `n` functions with the most self time. `window` (µs on the monotonic clock, as
 * `process.hrtime.bigint() / 1000n` reads it in any process on the machine: V8 stamps samples with
 * the same clock) keeps only the samples taken under load, leaving out start-up and shutdown.
 */
export function topSelfTime(
  file: string,
  root: string,
  n = 10,
  window?: { fromUs: number; toUs: number },
): { rows: SelfTime[]; busyMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, { fn: string; where: string; us: number }>();
  let busyUs = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    // Each delta is the time since the previous sample: charge it to this sample's function.
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    if (!node || us <= 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busyUs += us;
    const where = url ? located(url, lineNumber, root) : '';
    const fn = functionName || '(anonymous)';
    const key = `${fn}@${where}`;
    const entry = self.get(key) ?? { fn, where, us: 0 };
    entry.us += us;
    self.set(key, entry);
  }
  const rows = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: e.us / 1000, share: busyUs > 0 ? e.us / busyUs : 0 }));
  return { rows, busyMs: busyUs / 1000 };
}
