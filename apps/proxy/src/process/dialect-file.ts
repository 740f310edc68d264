// DIALECT_FILE (issue #29, docs/dialect-file.md): a dialect described as a JSON file, read and checked
// once at start. It takes DIALECT's place in the registry's role (dialects.ts): the file carries its
// default upstream URL, its default budget (or that the operator must set one) and its auth modes.

import { readFileSync } from 'node:fs';
import { fileDialect, parseDialectFile } from '@batch-proxy/core';
import type { DialectEntry } from './dialects.js';

/** The registry entry the file at `path` describes, or its first mistake as one line. */
export function readDialectFile(path: string): DialectEntry | { readonly error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { error: `${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `${path}: not JSON (${(err as Error).message})` };
  }
  const parsed = parseDialectFile(value);
  if ('error' in parsed) return { error: `${path}: ${parsed.error}` };
  const { spec } = parsed;
  return {
    dialect: fileDialect(spec),
    upstreamUrl: spec.upstreamUrl,
    batchBudget: 'required' in spec.budget ? 'required' : spec.budget,
    ...('required' in spec.budget ? { budgetWhy: spec.budget.required } : {}),
    authModes: spec.authModes,
    ...(spec.maxBytes === undefined ? {} : { maxBytes: spec.maxBytes }),
  };
}
