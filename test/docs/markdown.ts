// Reading the documentation for the docs checks (test/docs): which files, their inline code, their
// tables and their headings. Plain string work on the Markdown as written; no Markdown library.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../harness/repo-root.js';

export const ROOT = repoRoot();

export interface Doc {
  /** Path from the repository root, e.g. `docs/metrics.md`. */
  readonly path: string;
  readonly text: string;
}

/** README.md and every docs/*.md. */
export function docs(): Doc[] {
  const paths = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => `docs/${f}`),
  ];
  return paths.map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));
}

export function doc(path: string): Doc {
  return { path, text: readFileSync(join(ROOT, path), 'utf8') };
}

/** The contents of every inline code span (`…`) on one line. */
export function codeSpans(text: string): string[] {
  return Array.from(text.matchAll(/`([^`\n]+)`/g), (m) => m[1] as string);
}

/** `a{b,c}d` → `abd`, `acd` (shell brace expansion, nested groups one after another). */
export function expandBraces(s: string): string[] {
  const m = /\{([^{}]*)\}/.exec(s);
  if (!m) return [s];
  const [group, inner] = m as unknown as [string, string];
  return inner.split(',').flatMap((part) => expandBraces(s.replace(group, part)));
}

/**
 * The rows of the Markdown table whose header row's first cell is `firstHeader`, after the heading
 * line that starts with `section` (or anywhere when omitted). Cells split on `|` not escaped as `\|`.
 */
export function tableRows(text: string, firstHeader: string, section?: string): string[][] {
  const lines = text.split('\n');
  let i = 0;
  if (section !== undefined) {
    i = lines.findIndex((l) => l.startsWith(section));
    if (i < 0) throw new Error(`no heading ${JSON.stringify(section)}`);
  }
  const cellsOf = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith('|') || cellsOf(line)[0] !== firstHeader) continue;
    const rows: string[][] = [];
    for (let j = i + 2; j < lines.length && (lines[j] as string).startsWith('|'); j++)
      rows.push(cellsOf(lines[j] as string));
    return rows;
  }
  throw new Error(`no table with first header ${JSON.stringify(firstHeader)}`);
}

/** GitHub's anchors of a document's headings (`## Why was a call not batched?` → `why-was-a-call-not-batched`). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = (m[1] as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}
