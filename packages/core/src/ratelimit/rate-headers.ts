// The upstream's own word on its budget, read from an answer's headers (issue #30), pure. Several
// styles exist; each is read into one shape, and when an answer carries more than one the most
// conservative figures win (the least remaining, the furthest reset, the highest usage): a proxy that
// trusts the generous one of two disagreeing counters earns the 429 the other one promised.
//
// Styles:
// - ietf: draft-ietf-httpapi-ratelimit-headers. Latest form, structured fields: `RateLimit:
//   "default";r=50;t=30` (r remaining, t seconds to reset) and `RateLimit-Policy: "default";q=100;w=60`
//   (q quota, w window seconds); several policies may be listed, the tightest counts. Older drafts:
//   `RateLimit: limit=100, remaining=50, reset=30` and the `RateLimit-Limit/-Remaining/-Reset` triplet
//   (reset in delta seconds).
// - x-ratelimit: `X-RateLimit-Limit/-Remaining/-Reset` (GitHub and many others). Reset is epoch seconds
//   on GitHub and delta seconds elsewhere: a value of at least 1e9 (Sept 2001 as an epoch, 31 years as
//   a delta) is an epoch in seconds, one of at least 1e12 an epoch in milliseconds. HubSpot's
//   `X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds` is read here too (a window, no reset).
// - salesforce: `Sforce-Limit-Info: api-usage=10018/100000`: used/allowed over a rolling 24 h, no reset.
// - graph: `x-ms-throttle-limit-percentage: 0.8`..`1.8`: the share of a limit used, sent from 80 %. An
//   early hint, not a count.

export type RateHeaderStyle = 'ietf' | 'x-ratelimit' | 'salesforce' | 'graph';
export const RATE_HEADERS_MODES = ['auto', 'ietf', 'x-ratelimit', 'salesforce', 'graph', 'off'] as const;
export type RateHeadersMode = (typeof RATE_HEADERS_MODES)[number];

/** What an answer said of its budget. Durations are relative to when it was read (clocks differ). */
export interface RateReading {
  /** Requests left in the current window (whole, ≥ 0); undefined: no count (Graph's hint alone). */
  readonly remaining?: number;
  /** The window's quota, when said. */
  readonly limit?: number;
  /** Until the budget is whole again, in ms (≥ 0); undefined: not said (Salesforce's rolling day). */
  readonly resetInMs?: number;
  /** The policy's window, in ms, when said. */
  readonly windowMs?: number;
  /** Graph's hint: the share of a limit used (0.8 = 80 %). */
  readonly usage?: number;
}

export type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Salesforce counts API requests over a rolling 24 hours. */
export const SALESFORCE_WINDOW_MS = 86_400_000;
/** Larger counts are nonsense (and past 2^53 not even integers): such a header is ignored. */
const MAX_COUNT = 1e12;
/** At least this, a reset is an epoch in seconds; at least EPOCH_MS, in milliseconds. */
const EPOCH_S = 1e9;
const EPOCH_MS = 1e12;
/** A reset past this (the year 5138, in ms) is nonsense. */
const MAX_EPOCH_MS = 1e14;

/**
 * Reads `headers` (lower-case names) in `mode` at wall time `epochMs`. Undefined: nothing usable
 * (absent, malformed, or `off`). Never throws.
 */
export function readRateHeaders(
  headers: Headers,
  mode: RateHeadersMode,
  epochMs: number,
): RateReading | undefined {
  if (mode === 'off') return undefined;
  const readers: Record<RateHeaderStyle, () => RateReading | undefined> = {
    ietf: () => readIetf(headers),
    'x-ratelimit': () => readXRateLimit(headers, epochMs),
    salesforce: () => readSalesforce(headers),
    graph: () => readGraph(headers),
  };
  if (mode !== 'auto') return readers[mode]();
  return combine(Object.values(readers).map((read) => read()));
}

/** The most conservative of several readings: least remaining and limit, furthest reset, most usage. */
export function combine(readings: readonly (RateReading | undefined)[]): RateReading | undefined {
  const present = readings.filter((r): r is RateReading => r !== undefined);
  if (present.length <= 1) return present[0];
  return shape({
    remaining: least(present.map((r) => r.remaining)),
    limit: least(present.map((r) => r.limit)),
    // A count with no reset (Salesforce's rolling day) is whole again a window on, at the latest.
    resetInMs: most(present.map((r) => r.resetInMs ?? (r.remaining === undefined ? undefined : r.windowMs))),
    windowMs: most(present.map((r) => r.windowMs)),
    usage: most(present.map((r) => r.usage)),
  });
}

function readIetf(headers: Headers): RateReading | undefined {
  const fields = readIetfFields(headers);
  if (fields !== undefined) return fields;
  const remaining = count(first(header(headers, 'ratelimit-remaining')));
  if (remaining === undefined) return undefined;
  return reading({
    remaining,
    limit: count(first(header(headers, 'ratelimit-limit'))),
    resetInMs: seconds(first(header(headers, 'ratelimit-reset'))),
  });
}

/** `RateLimit` as structured-field items (latest drafts) or as one dictionary (older drafts). */
function readIetfFields(headers: Headers): RateReading | undefined {
  const value = header(headers, 'ratelimit');
  if (value === undefined) return undefined;
  const items = listItems(value);
  const older =
    items.some((i) => i.bare === 'remaining') &&
    items.every((i) => i.bare !== undefined && 'value' in i.params);
  if (older) {
    // `limit=100, remaining=50, reset=30`: each member is `key=value`, parsed here as a bare item.
    const dict = Object.fromEntries(items.map((i) => [i.bare, i.params.value]));
    const remaining = count(dict.remaining);
    return remaining === undefined
      ? undefined
      : reading({ remaining, limit: count(dict.limit), resetInMs: seconds(dict.reset) });
  }
  const policies = new Map<string, { q?: number; w?: number }>();
  for (const p of listItems(header(headers, 'ratelimit-policy') ?? '')) {
    const q = count(p.params.q);
    const w = seconds(p.params.w);
    policies.set(p.name, { ...(q === undefined ? {} : { q }), ...(w === undefined ? {} : { w }) });
  }
  const each: RateReading[] = [];
  for (const item of items) {
    const remaining = count(item.params.r);
    if (remaining === undefined) continue;
    const policy = policies.get(item.name);
    each.push(
      reading({ remaining, limit: policy?.q, resetInMs: seconds(item.params.t), windowMs: policy?.w }),
    );
  }
  return combine(each);
}

function readXRateLimit(headers: Headers, epochMs: number): RateReading | undefined {
  const remaining = count(header(headers, 'x-ratelimit-remaining'));
  if (remaining !== undefined) {
    return reading({
      remaining,
      limit: count(header(headers, 'x-ratelimit-limit')),
      resetInMs: resetIn(header(headers, 'x-ratelimit-reset'), epochMs),
    });
  }
  const hubspot = count(header(headers, 'x-hubspot-ratelimit-remaining'));
  if (hubspot === undefined) return undefined;
  const interval = count(header(headers, 'x-hubspot-ratelimit-interval-milliseconds'));
  return reading({
    remaining: hubspot,
    limit: count(header(headers, 'x-hubspot-ratelimit-max')),
    windowMs: interval === 0 ? undefined : interval,
  });
}

function readSalesforce(headers: Headers): RateReading | undefined {
  const m = /(?:^|[\s,;])api-usage=(\d+)\/(\d+)(?:$|[\s,;])/i.exec(
    header(headers, 'sforce-limit-info') ?? '',
  );
  const used = count(m?.[1]);
  const limit = count(m?.[2]);
  if (used === undefined || limit === undefined) return undefined;
  return { remaining: Math.max(0, limit - used), limit, windowMs: SALESFORCE_WINDOW_MS };
}

function readGraph(headers: Headers): RateReading | undefined {
  const raw = header(headers, 'x-ms-throttle-limit-percentage');
  if (raw === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(raw)) return undefined;
  const usage = Number(raw);
  // Graph documents 0.8..1.8; a value above 100 is a percentage written whole (80 = 0.8).
  const share = usage > 10 ? usage / 100 : usage;
  return share > 0 && share <= 10 ? { usage: share } : undefined;
}

type Loose = { [K in keyof RateReading]: RateReading[K] | undefined };

/** Remaining above its own limit contradicts itself: the limit is the truer bound of the two. */
function reading(r: Loose): RateReading {
  const remaining =
    r.remaining !== undefined && r.limit !== undefined ? Math.min(r.remaining, r.limit) : r.remaining;
  return shape({ ...r, remaining });
}

/** Drops undefined fields (exactOptionalPropertyTypes, and equal readings compare equal). */
function shape(r: Loose): RateReading {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as RateReading;
}

/** One header's value; a repeated header is joined as HTTP joins list fields. */
function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/** The first member of a list value (`100, 100;w=60` → `100`). */
function first(value: string | undefined): string | undefined {
  return value?.split(',')[0];
}

/** A whole non-negative count; undefined for anything else (negative, fractional, huge, text). */
function count(value: string | undefined, max = MAX_COUNT): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return n <= max ? n : undefined;
}

/** Whole non-negative seconds as ms. */
function seconds(value: string | undefined): number | undefined {
  const n = count(value);
  return n === undefined ? undefined : n * 1000;
}

/** An X-RateLimit-Reset: an epoch (s or ms) by magnitude, else delta seconds; a past epoch is now. */
function resetIn(value: string | undefined, epochMs: number): number | undefined {
  const n = count(value, MAX_EPOCH_MS);
  if (n === undefined) return undefined;
  if (n >= EPOCH_MS) return Math.max(0, n - epochMs);
  if (n >= EPOCH_S) return Math.max(0, n * 1000 - epochMs);
  return n * 1000;
}

interface Item {
  /** The item's name: a string's content, or a bare token's text. */
  readonly name: string;
  /** Set when the item was a bare token (`limit=100` reads as bare `limit` with param value=100). */
  readonly bare: string | undefined;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * A structured-field list (RFC 8941) as far as these headers use it: items of a string or a token,
 * each with `;key=value` parameters. Members that do not parse are skipped (never thrown on).
 */
function listItems(value: string): Item[] {
  const out: Item[] = [];
  for (const member of splitOutsideQuotes(value, ',')) {
    const [head = '', ...rest] = splitOutsideQuotes(member, ';').map((s) => s.trim());
    const params: Record<string, string> = Object.create(null);
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = unquote(p.slice(eq + 1).trim());
    }
    if (/^"[^"]*"$/.test(head)) {
      out.push({ name: head.slice(1, -1), bare: undefined, params });
      continue;
    }
    const eq = head.indexOf('=');
    const token = (eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase();
    if (!/^[a-z*][a-z0-9_\-.:%*/]*$/.test(token)) continue;
    if (eq >= 0) params.value = unquote(head.slice(eq + 1).trim());
    out.push({ name: token, bare: token, params });
  }
  return out;
}

function splitOutsideQuotes(value: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '"') quoted = !quoted;
    else if (value[i] === sep && !quoted) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

function unquote(value: string): string {
  return /^"[^"]*"$/.test(value) ? value.slice(1, -1) : value;
}

function least(values: readonly (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length === 0 ? undefined : Math.min(...defined);
}

function most(values: readonly (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length === 0 ? undefined : Math.max(...defined);
}
