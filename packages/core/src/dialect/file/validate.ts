// A dialect file checked at start (docs/dialect-file.md): against the schema, then its templates
// and the fields that depend on each other. A mistake is one line naming the field's path, e.g.
// `op[1].$: expected one of ops, id, …`, for the start-up error (exit 2).

import type * as z from 'zod';
import { type DialectFile, dialectFileSchema } from './schema.js';
import { checkTemplate } from './template.js';

/** A field path as written in the messages: `results.match.at`, `op[2].$`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(the file)' : out;
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0] as z.core.$ZodIssue;
  // A union names no field of its own: report the deepest mistake of its closest member.
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const depth = (issues: readonly z.core.$ZodIssue[]) => issues[0]?.path.length ?? -1;
    const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    const inner = best[0];
    if (inner) return `${fieldPath([...issue.path, ...inner.path])}: ${inner.message}`;
  }
  return `${fieldPath(issue.path)}: ${issue.message}`;
}

/** The file's format, or its first mistake as one line. */
export function parseDialectFile(
  value: unknown,
): { readonly spec: DialectFile } | { readonly error: string } {
  const parsed = dialectFileSchema.safeParse(value);
  if (!parsed.success) return { error: firstIssue(parsed.error) };
  const spec = parsed.data;
  const envelope = checkTemplate(spec.batch.envelope, 'envelope');
  if ('message' in envelope)
    return { error: `${fieldPath(['batch', 'envelope', ...envelope.path])}: ${envelope.message}` };
  const op = checkTemplate(spec.op, 'op');
  if ('message' in op) return { error: `${fieldPath(['op', ...op.path])}: ${op.message}` };
  if (spec.results.match.by === 'id' && !op.places.has('id'))
    return { error: 'results.match: matching by id needs an {"$": "id"} place in op' };
  if (
    spec.calls.query === 'object' &&
    spec.calls.queryMethods.length > 0 &&
    !op.places.has('query') &&
    op.places.get('body')?.onGet !== 'query' &&
    op.places.get('path')?.query !== true
  )
    return {
      error: 'calls.query: "object" needs a query place in op ({"$": "query"}, body onGet, or path query)',
    };
  if (
    spec.calls.query === 'path' &&
    op.places.get('path')?.query !== true &&
    spec.calls.queryMethods.length > 0
  )
    return {
      error: 'calls.query: "path" needs {"$": "path", "query": true} in op, or calls.queryMethods []',
    };
  const scopeCaptures = [...spec.scope.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]);
  for (const m of spec.batch.path.matchAll(/\{([^}]*)\}/g)) {
    if (!scopeCaptures.includes(m[1]))
      return { error: `batch.path: {${m[1]}} is not a capture of scope (${spec.scope})` };
  }
  if (spec.apiVersionHeader !== undefined && !op.places.has('apiVersion'))
    return { error: 'apiVersionHeader: needs an {"$": "apiVersion"} place in op' };
  if (spec.headers.carry.length > 0 && !op.places.has('headers'))
    return { error: 'headers.carry: carried headers need an {"$": "headers"} place in op' };
  const twice =
    spec.headers.carry.find((h) => spec.headers.drop.includes(h) || spec.headers.pass.includes(h)) ??
    spec.headers.drop.find((h) => spec.headers.pass.includes(h));
  if (twice !== undefined) return { error: `headers: "${twice}" is in two lists` };
  return { spec };
}
