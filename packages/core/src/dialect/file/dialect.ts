// The interpreter of a dialect file (docs/dialect-file.md): a BatchDialect built from the validated
// format, so an API is added with one file instead of a module.

import type {
  AppTarget,
  BatchAnswer,
  BatchDialect,
  HeaderRule,
  OpInput,
  OpRefusal,
  OpRequest,
  OpResult,
  UpstreamRequest,
} from '../dialect.js';
import { readBatchEnvelope } from '../envelope.js';
import { isCommonlyDroppable, relayableHeaders } from '../headers.js';
import { fillPath, matchesPath, matchScope, scopePattern, scopePrefix } from './pattern.js';
import { type IdForm, readResults } from './results.js';
import type { DialectFile } from './schema.js';
import { render } from './template.js';

/** The op template's id place, as the results are matched by it. */
function idFormOf(template: unknown): IdForm | undefined {
  let found: IdForm | undefined;
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === 'object' && value !== null) {
      const v = value as Record<string, unknown>;
      if (v.$ === 'id') {
        const prefix = typeof v.prefix === 'string' ? v.prefix : '';
        found = { type: v.prefix !== undefined || v.type === 'string' ? 'string' : 'number', prefix };
      } else Object.values(v).forEach(walk);
    }
  };
  walk(template);
  return found;
}

/** The BatchDialect a validated dialect file describes (parseDialectFile first). */
export function fileDialect(spec: DialectFile): BatchDialect {
  const scope = scopePattern(spec.scope, spec.caseInsensitivePaths);
  const idForm = idFormOf(spec.op);
  const { calls, headers: rules } = spec;
  const fold = (path: string) => (spec.caseInsensitivePaths ? path.toLowerCase() : path).replace(/\/+$/, '');
  const refuse = (passThrough: string, reason: OpRefusal['reason']): OpRefusal => ({ passThrough, reason });

  const dialect: BatchDialect = {
    name: spec.name,
    maxOps: spec.maxOps,
    cost: spec.cost,
    throttleScope: spec.throttleScope,
    // No header has an empty name: without apiVersionHeader no call names a version.
    apiVersionHeader: spec.apiVersionHeader ?? '',

    requestHeader(name: string): HeaderRule {
      if (rules.carry.includes(name)) return 'carry';
      if (rules.pass.includes(name)) return 'pass';
      if (rules.drop.includes(name) || name === spec.apiVersionHeader || isCommonlyDroppable(name))
        return 'drop';
      return 'pass';
    },

    answerHeaders(headers) {
      return rules.relay ? relayableHeaders(headers) : {};
    },

    parseTarget(pathname: string): AppTarget | undefined {
      return matchScope(scope, pathname);
    },

    ...(spec.caseInsensitivePaths ? { resourceKey: (path: string) => path.toLowerCase() } : {}),

    isBatchEndpoint(target: AppTarget): boolean {
      const own = fold(`${scopePrefix(scope, target.appId)}${target.path}`);
      if (own === fold(fillPath(scope, spec.batch.path, target.appId))) return true;
      const matches = (pattern: string) => matchesPath(pattern, target.path, spec.caseInsensitivePaths);
      // An API whose batch takes only some resources lists them (include): any other path goes alone.
      if (calls.include !== undefined && !calls.include.some(matches)) return true;
      return calls.exclude.some(matches);
    },

    toOp({ method, target, query, body, apiVersion, headers, search }: OpInput) {
      if (!calls.methods.includes(method)) return refuse(`${spec.name} batches no ${method}`, 'method');
      // No prototype: a key such as `__proto__` is data, not a property write (SPEC §8c).
      const params: Record<string, string> = Object.create(null);
      for (const [key, value] of query) {
        if (!calls.queryMethods.includes(method))
          return refuse(`a query string on a ${method} cannot travel in a batch op`, 'query');
        if (calls.query === 'object' && Object.hasOwn(params, key))
          return refuse(`repeated query parameter "${key}"`, 'query');
        params[key] = value;
      }
      if (body !== undefined && !calls.bodyMethods.includes(method))
        return refuse(`a ${method} with a body`, 'body');
      if (body === undefined && calls.bodyRequired.includes(method))
        return refuse(`a ${method} without a body cannot travel in a batch op`, 'body');
      const carried: Record<string, string> = {};
      for (const name of rules.carry) {
        const value = headers?.[name];
        if (value !== undefined) carried[name] = value;
      }
      const op: OpRequest = {
        method,
        path: target.path,
        query: calls.query === 'object' ? params : {},
        body,
        apiVersion,
        ...(rules.carry.length > 0 ? { headers: carried } : {}),
        ...(calls.query === 'path' ? { search: search ?? '' } : {}),
      };
      return { op };
    },

    batchRequest(appId: string, ops: readonly OpRequest[]): UpstreamRequest {
      const prefix = scopePrefix(scope, appId);
      const texts = ops.map((op, seq) => render(spec.op, { seq, op, prefix, queryMode: calls.query }));
      return {
        method: spec.batch.method,
        path: fillPath(scope, spec.batch.path, appId),
        headers: { ...spec.batch.headers },
        body: render(spec.batch.envelope, undefined, `[${texts.join(',')}]`),
      };
    },

    singleRequest(appId: string, op: OpRequest): UpstreamRequest {
      const search =
        calls.query === 'object'
          ? new URLSearchParams(op.query).toString()
          : (op.search ?? '').replace(/^\?/, '');
      const headers: Record<string, string> = { ...op.headers };
      if (op.body !== undefined) headers['content-type'] = 'application/json';
      if (op.apiVersion !== undefined && spec.apiVersionHeader !== undefined)
        headers[spec.apiVersionHeader] = op.apiVersion;
      return {
        method: op.method,
        path: `${scopePrefix(scope, appId)}${op.path}${search ? `?${search}` : ''}`,
        headers,
        body: op.body,
      };
    },

    decodeResults(body: unknown, count: number): OpResult[] {
      return readResults(spec, idForm, body, count);
    },

    readBatchAnswer(status: number, body: string, count: number): BatchAnswer {
      return readBatchEnvelope(status, body, (decoded) => readResults(spec, idForm, decoded, count));
    },
  };
  return dialect;
}
