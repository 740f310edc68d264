// The README's configuration table against the variables the proxy reads (issue #32), both ways:
// every variable the table names is read (by the schema in apps/proxy/src/process/config.ts, or, for the
// standard `OTEL_*` ones, by an `env.NAME` read elsewhere in apps/proxy/src), and every variable the
// proxy reads is in the table.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../apps/proxy/src/process/config.js';
import { codeSpans, doc, ROOT, tableRows } from './markdown.js';

const SRC = join(ROOT, 'apps/proxy/src');
const NAME = /^[A-Z][A-Z0-9_]*$/;

/** The names in the first column of the README's configuration table (`A` / `B`, `OTEL_*`). */
function documented(): string[] {
  return tableRows(doc('README.md').text, 'variable', '## Configuration').flatMap((cells) =>
    codeSpans(cells[0] ?? ''),
  );
}

/**
 * The keys of config.ts's schema: every `NAME: z.…` property, in the `z.object({…})` and in the
 * field groups spread into it (`...paceFields`).
 */
function schemaKeys(): Set<string> {
  const source = readFileSync(join(SRC, 'process/config.ts'), 'utf8');
  return new Set(Array.from(source.matchAll(/^\s+([A-Z][A-Z0-9_]*):\s*z\./gm), (m) => m[1] as string));
}

/** Variables read straight from an environment object elsewhere (`env.OTEL_SDK_DISABLED`). */
function directReads(): Map<string, string> {
  const reads = new Map<string, string>();
  for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    const text = readFileSync(join(SRC, file), 'utf8');
    for (const m of text.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]*)|\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\])/g))
      reads.set((m[1] ?? m[2]) as string, file);
  }
  return reads;
}

const covers = (pattern: string, name: string) =>
  pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;

describe("the README's configuration table", () => {
  const names = documented();
  const keys = schemaKeys();
  const reads = directReads();

  it('is read whole: the schema keys found are the ones config.ts returns with their defaults', () => {
    // Guards the reading of config.ts above: each variable with a default comes back from
    // loadConfig({}), so one the pattern missed would show here.
    const defaulted = Object.keys(loadConfig({})).filter((k) => NAME.test(k));
    expect(defaulted.length).toBeGreaterThan(30);
    expect(defaulted.filter((k) => !keys.has(k))).toEqual([]);
    expect(names.length).toBeGreaterThan(30);
  });

  it('names only variables the proxy reads', () => {
    const unread = names.filter((n) =>
      n.endsWith('*') ? ![...reads.keys()].some((r) => covers(n, r)) : !keys.has(n) && !reads.has(n),
    );
    expect(unread, 'in the README table, read by nothing in apps/proxy/src').toEqual([]);
    expect(names.filter((n) => !NAME.test(n.replace(/\*$/, 'X')))).toEqual([]);
  });

  it('names every variable the proxy reads', () => {
    const read = [...keys, ...reads.keys()];
    expect(
      read.filter((r) => !names.some((n) => covers(n, r))),
      'read by apps/proxy/src, missing from the README table',
    ).toEqual([]);
  });
});
