// The path patterns of a dialect file: the scope prefix (`/v1/{app}`, whole segments, literal or a
// named capture) that splits a request path into its scope and the path below it, and the batch
// call's path built back from the captures.

import type { AppTarget } from '../dialect.js';

type Segment = { readonly literal: string } | { readonly capture: string };

export interface ScopePattern {
  readonly segments: readonly Segment[];
  readonly captures: readonly string[];
  readonly caseInsensitive: boolean;
}

export function scopePattern(pattern: string, caseInsensitive: boolean): ScopePattern {
  const segments = pattern
    .slice(1)
    .split('/')
    .map((s): Segment => (s.startsWith('{') ? { capture: s.slice(1, -1) } : { literal: s }));
  const captures = segments.flatMap((s) => ('capture' in s ? [s.capture] : []));
  return { segments, captures, caseInsensitive };
}

/**
 * The scope (`appId`: the captures, decoded and joined by `/`) and the path below it; undefined when
 * the path is not below the scope, a capture is empty or decodes to a `/`, or nothing is below it.
 */
export function matchScope(p: ScopePattern, pathname: string): AppTarget | undefined {
  const parts = pathname.split('/');
  // parts[0] is the empty text before the leading '/'; the scope's segments follow, then at least one more.
  if (parts[0] !== '' || parts.length < p.segments.length + 2) return undefined;
  const values: string[] = [];
  for (const [i, segment] of p.segments.entries()) {
    const part = parts[i + 1] as string;
    if ('literal' in segment) {
      const same = p.caseInsensitive
        ? part.toLowerCase() === segment.literal.toLowerCase()
        : part === segment.literal;
      if (!same) return undefined;
      continue;
    }
    let value: string;
    try {
      value = decodeURIComponent(part);
    } catch {
      return undefined;
    }
    if (value === '' || value.includes('/')) return undefined;
    values.push(value);
  }
  const path = `/${parts.slice(p.segments.length + 1).join('/')}`;
  if (path === '/') return undefined;
  return { appId: values.join('/'), path };
}

/** The captures an appId stands for, by name. */
function capturesOf(p: ScopePattern, appId: string): Map<string, string> {
  const values = p.captures.length <= 1 ? [appId] : appId.split('/');
  return new Map(p.captures.map((name, i) => [name, values[i] ?? '']));
}

/** `template` (`/v1/{app}/batch`) with each `{name}` replaced by the scope's capture, encoded. */
export function fillPath(p: ScopePattern, template: string, appId: string): string {
  const captures = capturesOf(p, appId);
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) =>
    encodeURIComponent(captures.get(name) ?? ''),
  );
}

/** The raw path prefix of the scope for `appId` (the scope pattern filled in). */
export function scopePrefix(p: ScopePattern, appId: string): string {
  return fillPath(
    p,
    `/${p.segments.map((s) => ('literal' in s ? s.literal : `{${s.capture}}`)).join('/')}`,
    appId,
  );
}

/** True when `path` (below the scope) matches `pattern`: `*` one segment, a final `**` the rest. */
export function matchesPath(pattern: string, path: string, caseInsensitive: boolean): boolean {
  const want = (caseInsensitive ? pattern.toLowerCase() : pattern).replace(/\/+$/, '').split('/');
  const got = (caseInsensitive ? path.toLowerCase() : path).replace(/\/+$/, '').split('/');
  for (const [i, w] of want.entries()) {
    if (w === '**' && i === want.length - 1) return got.length > i;
    if (i >= got.length || (w !== '*' && w !== got[i]) || (w === '*' && got[i] === '')) return false;
  }
  return want.length === got.length;
}
