// PRIORITY_RULES (issue #31): the operator's priorities by method and path, for callers that send no
// `x-batch-priority` of their own — e.g. `low GET /v1/*/users/*/sync/**; high POST /v1/*/messages`.
// Entries are separated by `;`, each `<high|normal|low> <METHOD or *> <path pattern>`, where `*`
// matches one path segment and a final `**` any rest; the first entry that matches wins.

import { PRIORITIES, type Priority } from '@batch-proxy/core';

interface Rule {
  readonly priority: Priority;
  readonly method: string | undefined;
  readonly segments: readonly string[];
  /** The pattern ends in `**`: any rest matches. */
  readonly rest: boolean;
}

export interface PriorityRules {
  priorityOf(method: string, pathname: string): Priority | undefined;
  readonly size: number;
}

/** The rules, or the first entry that is not one (for the start-up error). */
export function parsePriorityRules(
  text: string,
): PriorityRules | { readonly invalid: string; readonly why: string } {
  const rules: Rule[] = [];
  for (const raw of text.split(';')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const parts = entry.split(/\s+/);
    if (parts.length !== 3) return { invalid: entry, why: 'expected "<priority> <METHOD|*> <path>"' };
    const [priority, method, path] = parts as [string, string, string];
    if (!(PRIORITIES as readonly string[]).includes(priority))
      return { invalid: entry, why: `the priority must be one of ${PRIORITIES.join(', ')}` };
    if (method !== '*' && !/^[A-Z]+$/.test(method))
      return { invalid: entry, why: 'the method must be upper case, or *' };
    if (!path.startsWith('/')) return { invalid: entry, why: 'the path must start with /' };
    const segments = path.slice(1).split('/');
    const rest = segments.at(-1) === '**';
    if (rest) segments.pop();
    if (segments.includes('**')) return { invalid: entry, why: '** may only end the path' };
    rules.push({
      priority: priority as Priority,
      method: method === '*' ? undefined : method,
      segments,
      rest,
    });
  }
  return {
    size: rules.length,
    priorityOf(method, pathname) {
      if (rules.length === 0) return undefined;
      const segments = pathname.slice(1).split('/');
      for (const rule of rules) if (matches(rule, method, segments)) return rule.priority;
      return undefined;
    },
  };
}

function matches(rule: Rule, method: string, segments: readonly string[]): boolean {
  if (rule.method !== undefined && rule.method !== method) return false;
  if (rule.rest ? segments.length < rule.segments.length : segments.length !== rule.segments.length)
    return false;
  for (let i = 0; i < rule.segments.length; i += 1) {
    const want = rule.segments[i];
    if (want !== '*' && want !== segments[i]) return false;
  }
  return true;
}
