// How the fake runs one composite call: the order subrequests execute in, `@{ref.field}` references
// between them, and what allOrNone means for the results (requests_composite, "Composite Subrequest
// Result": with allOrNone true and an error, "all other subrequests return the 400 HTTP status code").

import { shuffled } from '../fake-upstream/prng.js';
import { type Composite, referencesOf, resolveInBody, resolveReferences } from './composite.js';
import type { CompositeResult } from './faults.js';
import { type Request, type SalesforceStore, type SfResult, sfError } from './store.js';

const HALTED_ROLLBACK =
  'The transaction was rolled back since another operation in the same transaction failed.';

export interface CompositeDeps {
  store: SalesforceStore;
  random: () => number;
  answerOrder: 'shuffled' | 'request';
  /** Runs one subrequest (references resolved) and records it. */
  execute(req: Request, headers: Record<string, string>, referenceId: string): SfResult;
}

export function runComposite(composite: Composite, deps: CompositeDeps): CompositeResult[] {
  const subs = composite.subrequests;
  const ids = new Set(subs.map((s) => s.referenceId));
  const refs = subs.map((s) => referencesOf(s, ids));
  // Documented (collateSubrequests): without explicit dependencies the order of execution is not
  // guaranteed; with references the fake keeps the request's order.
  const order =
    composite.collateSubrequests && refs.every((r) => r.length === 0) ? shuffled(subs, deps.random) : subs;
  const rollback = composite.allOrNone ? deps.store.snapshot() : undefined;
  const bodies = new Map<string, unknown>();
  const results = new Map<string, SfResult>();
  for (const s of order) {
    const mine = refs[s.index] as string[];
    // "Dependent subrequests aren't executed" when what they depend on failed (or has not run).
    if (mine.some((id) => !bodies.has(id))) {
      results.set(
        s.referenceId,
        sfError(
          400,
          'PROCESSING_HALTED',
          `Invalid reference specified. No value for ${mine.join(', ')} found.`,
        ),
      );
      continue;
    }
    const req = {
      method: s.method,
      url: resolveReferences(s.url, bodies),
      body: resolveInBody(s.body, bodies),
    };
    const headers = Object.fromEntries(Object.entries(s.httpHeaders).map(([k, v]) => [k.toLowerCase(), v]));
    const result = deps.execute(req, headers, s.referenceId);
    results.set(s.referenceId, result);
    if (result.status < 400) bodies.set(s.referenceId, result.body);
  }
  const failed = [...results.values()].some((r) => r.status >= 400);
  if (rollback && failed) rollback();
  const out = subs.map((s): CompositeResult => {
    const own = results.get(s.referenceId) as SfResult;
    const r =
      rollback && failed && own.status < 400 ? sfError(400, 'PROCESSING_HALTED', HALTED_ROLLBACK) : own;
    return { body: r.body, httpHeaders: r.headers, httpStatusCode: r.status, referenceId: s.referenceId };
  });
  return deps.answerOrder === 'request' ? out : shuffled(out, deps.random);
}
