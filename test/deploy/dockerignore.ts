// A .dockerignore matcher following Docker's rules (moby/patternmatcher): Go-style globs on
// slash-separated paths, `**` for any number of folders, `!` to re-include, the last match wins, and
// a path is excluded when it or one of its parent folders is.

interface Rule {
  readonly regex: RegExp;
  readonly include: boolean;
}

function toRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` matches zero or more folders; a trailing `**` matches everything below.
        if (pattern[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else {
          out += '.*';
        }
      } else {
        out += '[^/]*';
      }
    } else if (ch === '?') {
      out += '[^/]';
    } else {
      out += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
}

export function parseDockerignore(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const include = line.startsWith('!');
    if (include) line = line.slice(1).trim();
    line = line.replace(/^\/+/, '').replace(/\/+$/, '');
    if (line === '') continue;
    rules.push({ regex: toRegex(line), include });
  }
  return rules;
}

/** True when Docker would leave `path` (relative to the context, `/`-separated) out of the context. */
export function isIgnored(rules: readonly Rule[], path: string): boolean {
  const parts = path.split('/');
  let ignored = false;
  for (const rule of rules) {
    for (let n = 1; n <= parts.length; n++) {
      if (rule.regex.test(parts.slice(0, n).join('/'))) {
        ignored = !rule.include;
        break;
      }
    }
  }
  return ignored;
}
