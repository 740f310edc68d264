// Where the top-level members of a JSON object sit in its text, so a dialect can replace one member's
// value (JSON-RPC: the caller's `id`) and splice the rest as received, never re-serialised: a number
// such as 2.50 or 12345678901234567890 in the caller's params reaches the upstream as written.

/** One top-level member: its decoded name and where its value's text starts and ends. */
export interface MemberSpan {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length && WHITESPACE.has(text[i] as string)) i++;
  return i;
}

/** The index just past the string starting at `at` (a quote). */
function skipString(text: string, at: number): number {
  let i = at + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i + 1;
}

/** The index just past the value starting at `at`: a string, an object or array, or a literal. */
function skipValue(text: string, at: number): number {
  const first = text[at];
  if (first === '"') return skipString(text, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    let i = at;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i = skipString(text, i);
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') depth--;
      i++;
      if (depth === 0) return i;
    }
    return i;
  }
  let i = at;
  while (i < text.length && !WHITESPACE.has(text[i] as string) && text[i] !== ',' && text[i] !== '}') i++;
  return i;
}

/**
 * The top-level members of `text`, which must be valid JSON (the edge validated it); undefined when
 * it is not an object.
 */
export function memberSpans(text: string): MemberSpan[] | undefined {
  let i = skipSpace(text, 0);
  if (text[i] !== '{') return undefined;
  const members: MemberSpan[] = [];
  i = skipSpace(text, i + 1);
  while (text[i] === '"') {
    const nameEnd = skipString(text, i);
    // Decoded, so `"\u0069d"` is the name `id` as any JSON parser reads it.
    const name = JSON.parse(text.slice(i, nameEnd)) as string;
    const start = skipSpace(text, skipSpace(text, nameEnd) + 1); // past the colon
    const end = skipValue(text, start);
    members.push({ name, start, end });
    i = skipSpace(text, end);
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
  return members;
}
