// The JSON templates of a dialect file (docs/dialect-file.md "Templates"): checked once at start, and
// rendered per batch as JSON text — each caller's body is spliced in as received, never parsed and
// re-serialised, as the built-in dialects do.

import type { OpRequest } from '../dialect.js';

export const PLACES = ['ops', 'id', 'method', 'path', 'query', 'body', 'headers', 'apiVersion'] as const;
export type PlaceName = (typeof PLACES)[number];

/** Where an op's values come from when its template is rendered. */
export interface OpValues {
  readonly seq: number;
  readonly op: OpRequest;
  /** The raw scope prefix of the op's path (e.g. `/services/data/v59.0`), for `{"$":"path","whole":true}`. */
  readonly prefix: string;
  /** How a query travels: as an object, or as text after the path. */
  readonly queryMode: 'object' | 'path';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Place = { readonly $: string; readonly [key: string]: Json };

const ALLOWED_KEYS: Readonly<Record<PlaceName, readonly string[]>> = {
  ops: [],
  id: ['prefix', 'type'],
  method: [],
  path: ['whole', 'query'],
  query: ['absent'],
  body: ['absent', 'onGet'],
  headers: ['absent'],
  apiVersion: ['absent'],
};
const WHERE: Readonly<Record<PlaceName, 'envelope' | 'op'>> = {
  ops: 'envelope',
  id: 'op',
  method: 'op',
  path: 'op',
  query: 'op',
  body: 'op',
  headers: 'op',
  apiVersion: 'op',
};
/** Places that may have no value for an op (and `$if` may test). */
const OPTIONAL: ReadonlySet<string> = new Set(['query', 'body', 'headers', 'apiVersion']);

function isPlace(value: Json): value is Place {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, '$');
}

/** A template mistake: the path below the template's field, and what is wrong. */
export interface TemplateIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** The places a template uses, or its first mistake. */
export function checkTemplate(
  template: unknown,
  kind: 'envelope' | 'op',
): { readonly places: ReadonlyMap<PlaceName, Place> } | TemplateIssue {
  const places = new Map<PlaceName, Place>();
  const visit = (value: Json, path: (string | number)[]): TemplateIssue | undefined => {
    if (isPlace(value)) {
      const name = value.$ as PlaceName;
      if (!(PLACES as readonly string[]).includes(name))
        return { path: [...path, '$'], message: `expected one of ${PLACES.join(', ')}` };
      if (WHERE[name] !== kind)
        return { path: [...path, '$'], message: `"${name}" is a place of the ${WHERE[name]} template` };
      for (const key of Object.keys(value)) {
        if (key !== '$' && !ALLOWED_KEYS[name].includes(key))
          return {
            path: [...path, key],
            message: `"${name}" takes ${ALLOWED_KEYS[name].join(', ') || 'no options'}`,
          };
      }
      if (name === 'id' && value.prefix !== undefined && typeof value.prefix !== 'string')
        return { path: [...path, 'prefix'], message: 'expected a string' };
      if (name === 'id' && value.type !== undefined && value.type !== 'number' && value.type !== 'string')
        return { path: [...path, 'type'], message: 'expected "number" or "string"' };
      if (name === 'body' && value.onGet !== undefined && value.onGet !== 'query')
        return { path: [...path, 'onGet'], message: 'expected "query"' };
      for (const flag of ['whole', 'query'] as const) {
        if (name === 'path' && value[flag] !== undefined && typeof value[flag] !== 'boolean')
          return { path: [...path, flag], message: 'expected true or false' };
      }
      if (places.has(name)) return { path: [...path, '$'], message: `"${name}" appears twice` };
      places.set(name, value);
      return undefined;
    }
    if (Array.isArray(value)) {
      let omittable = false;
      for (const [i, item] of value.entries()) {
        const issue = visit(item, [...path, i]);
        if (issue) return issue;
        // A positional array may only lose trailing elements, or the positions would shift.
        const mayGo = mayBeOmitted(item);
        if (omittable && !mayGo)
          return {
            path: [...path, i],
            message: 'follows an element that may be left out: put optional ones last',
          };
        omittable ||= mayGo;
      }
      return undefined;
    }
    if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key === '$if') {
          if (typeof item !== 'string' || !OPTIONAL.has(item))
            return { path: [...path, key], message: `expected one of ${[...OPTIONAL].join(', ')}` };
          continue;
        }
        const issue = visit(item, [...path, key]);
        if (issue) return issue;
      }
    }
    return undefined;
  };
  const issue = visit(template as Json, []);
  if (issue) return issue;
  if (kind === 'envelope' && !places.has('ops')) return { path: [], message: 'has no {"$": "ops"} place' };
  if (kind === 'op' && !places.has('method')) return { path: [], message: 'has no {"$": "method"} place' };
  if (kind === 'op' && !places.has('path')) return { path: [], message: 'has no {"$": "path"} place' };
  return { places };
}

function mayBeOmitted(value: Json): boolean {
  if (isPlace(value)) return OPTIONAL.has(value.$) && !Object.hasOwn(value, 'absent');
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, '$if');
}

const str = JSON.stringify;

function hasQuery(op: OpRequest): boolean {
  return Object.keys(op.query).length > 0;
}

/** The JSON text of an optional place for this op, or undefined when it has none. */
function optionalValue(name: string, v: OpValues, place?: Place): string | undefined {
  const { op } = v;
  switch (name) {
    case 'query':
      return hasQuery(op) ? str(op.query) : undefined;
    case 'body':
      if (place?.onGet === 'query' && op.method === 'GET') return str(op.query);
      return op.body;
    case 'headers':
      return op.headers && Object.keys(op.headers).length > 0 ? str(op.headers) : undefined;
    default:
      return op.apiVersion === undefined ? undefined : str(op.apiVersion);
  }
}

function placeText(place: Place, v: OpValues): string | undefined {
  const { op, seq } = v;
  switch (place.$) {
    case 'id': {
      const prefix = typeof place.prefix === 'string' ? place.prefix : undefined;
      return prefix !== undefined || place.type === 'string' ? str(`${prefix ?? ''}${seq}`) : String(seq);
    }
    case 'method':
      return str(op.method);
    case 'path': {
      let path = place.whole === true ? `${v.prefix}${op.path}` : op.path;
      if (place.query === true) {
        const search =
          v.queryMode === 'object'
            ? new URLSearchParams(op.query).toString()
            : (op.search ?? '').replace(/^\?/, '');
        if (search !== '') path += `?${search}`;
      }
      return str(path);
    }
    default: {
      const text = optionalValue(place.$, v, place);
      return text === undefined && Object.hasOwn(place, 'absent') ? str(place.absent) : text;
    }
  }
}

/** Renders `template` as JSON text; `ops` is the text the `ops` place stands for. */
export function render(template: unknown, values: OpValues | undefined, ops?: string): string {
  const walk = (value: Json): string | undefined => {
    if (isPlace(value)) {
      if (value.$ === 'ops') return ops ?? '[]';
      return values === undefined ? undefined : placeText(value, values);
    }
    if (Array.isArray(value)) {
      const parts: string[] = [];
      for (const item of value) {
        const text = walk(item);
        if (text !== undefined) parts.push(text);
      }
      return `[${parts.join(',')}]`;
    }
    if (typeof value === 'object' && value !== null) {
      const test = value.$if;
      if (typeof test === 'string' && (values === undefined || optionalValue(test, values) === undefined))
        return undefined;
      const parts: string[] = [];
      for (const [key, item] of Object.entries(value)) {
        if (key === '$if') continue;
        const text = walk(item);
        if (text !== undefined) parts.push(`${str(key)}:${text}`);
      }
      return `{${parts.join(',')}}`;
    }
    return str(value);
  };
  return walk(template as Json) ?? 'null';
}
