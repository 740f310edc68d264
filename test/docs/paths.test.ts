// The repository files the documentation names exist (issue #32): every path in inline code in
// README.md and docs/*.md (`apps/proxy/src/classify.ts`, `test/bench/guard.ts`, `infra/`), every
// source file it names by its bare name (`settle-3.lua`, `pump.test.ts`), and every relative link,
// its `#anchor` included. Renamed or deleted files then fail here instead of leaving the docs behind.
//
// What counts as a path: a word of an inline code span that contains a `/` and either ends in a file
// extension or starts with a top-level entry of the repository; URLs, absolute API paths (`/v1/…`),
// globs and placeholders (`<name>`) are not. Docs shorten paths inside a package (`batcher/retry.ts`
// for packages/core/src/batcher/retry.ts, `dist/main.js` for apps/proxy/dist/main.js), so a path may
// also be found under one of BASES.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, codeSpans, docs, expandBraces, ROOT } from './markdown.js';

/** Folders a doc's short path may be relative to, besides the root and the doc's own folder. */
const BASES = ['packages/core/src', 'packages/core/src/ratelimit', 'apps/proxy/src', 'apps/proxy'];

/** Words that look like paths and are not this repository's, each with its reason. */
const NOT_OURS: Readonly<Record<string, string>> = {
  'concepts/json-batching.md':
    "a file of microsoftgraph/microsoft-graph-docs-contrib (graph-dialect.md's sources)",
  'src/content/BatchRequestContent.ts': 'a file of microsoftgraph/msgraph-sdk-javascript (a source)',
};

/** Outputs of a run, not files of the repository: the folder, and why a clean clone lacks it. */
const GENERATED: ReadonlyArray<readonly [prefix: string, why: string]> = [
  ['test/.artifacts/', 'written by test runs (mutation report, image test logs, profiles); gitignored'],
  ['test/bench/dist/', 'compiled by `pnpm bench` and its siblings (tsc -p test/bench)'],
];

/** Bare file names checked against every file name in the repository: source and docs, not outputs. */
const SOURCE_FILE = /^[\w.{},@-]+\.(ts|mts|mjs|lua|sh|md|yaml|yml)$/;

const TOP = new Set(readdirSync(ROOT).filter((n) => n !== 'node_modules' && n !== '.git'));

function allFileNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', '.git', 'dist', '.artifacts', '.turbo'].includes(entry.name)) continue;
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else names.add(entry.name);
    }
  };
  walk(ROOT);
  return names;
}

/** The words of a doc's inline code, quotes and trailing punctuation trimmed. */
function codeWords(text: string): string[] {
  return codeSpans(text).flatMap((span) =>
    span
      .split(/\s+/)
      .map((w) => w.replace(/^["'([]+/, '').replace(/["')\],;:.]+$/, ''))
      .filter((w) => w !== ''),
  );
}

function isRepoPath(word: string): boolean {
  if (!word.includes('/') || word.startsWith('/') || word.includes('://')) return false;
  if (/[<>*$=?#]/.test(word) || !/^[\w.@{},/-]+$/.test(word)) return false;
  return /\.[a-z0-9]{1,5}$/i.test(word) || TOP.has(word.split('/')[0] as string);
}

const exists = (doc: string, path: string) =>
  ['', dirname(doc), ...BASES].some((base) => existsSync(join(ROOT, base, path)));

describe('paths the docs name', () => {
  it('exist in the repository (or are listed as outputs or as not ours)', () => {
    const missing: string[] = [];
    let checked = 0;
    for (const { path: doc, text } of docs())
      for (const word of codeWords(text).filter(isRepoPath))
        for (const path of expandBraces(word)) {
          if (path in NOT_OURS || GENERATED.some(([prefix]) => path.startsWith(prefix))) continue;
          checked++;
          if (!exists(doc, path)) missing.push(`${doc}: ${path}`);
        }
    expect(checked).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });

  it('name files by their bare name only when a file of that name exists', () => {
    const names = allFileNames();
    const missing: string[] = [];
    for (const { path: doc, text } of docs())
      for (const word of codeWords(text))
        if (!word.includes('/') && SOURCE_FILE.test(word))
          for (const name of expandBraces(word)) if (!names.has(name)) missing.push(`${doc}: ${name}`);
    expect(missing).toEqual([]);
  });

  it('keep their allow-lists true: each entry is still named, and none is a file here', () => {
    const all = docs()
      .map((d) => d.text)
      .join('\n');
    for (const [path, why] of Object.entries(NOT_OURS)) {
      expect(all, `${path} (${why}) is named by no doc any more: drop it`).toContain(path);
      expect(exists('docs/x.md', path), `${path} is a file here after all`).toBe(false);
    }
    for (const [prefix, why] of GENERATED) expect(all, `${prefix} (${why})`).toContain(prefix);
  });
});

describe('relative links in the docs', () => {
  it('lead to a file that exists, and to a heading of it when they carry an #anchor', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const { path: doc, text } of docs())
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1] as string;
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
        checked++;
        const [file = '', anchor] = link.split('#');
        const target = file === '' ? doc : posix.join(posix.dirname(doc), file);
        if (!existsSync(join(ROOT, target))) {
          broken.push(`${doc}: ${link} (no ${target})`);
          continue;
        }
        if (anchor !== undefined && target.endsWith('.md'))
          if (!anchors(readFileSync(join(ROOT, target), 'utf8')).has(anchor))
            broken.push(`${doc}: ${link} (no heading #${anchor} in ${target})`);
      }
    expect(checked).toBeGreaterThan(10);
    expect(broken).toEqual([]);
  });
});
