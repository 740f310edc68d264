// A small Dockerfile reader for static checks: instructions with continuation lines joined, comments
// and parser directives dropped, grouped by build stage, ARG defaults substituted in FROM.

export interface Instruction {
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  /** The FROM image, with global ARG defaults substituted. */
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = i;
    let line = lines[i] ?? '';
    if (/^\s*#/.test(line) || line.trim() === '') continue;
    // A trailing backslash continues the instruction; comment lines inside it are skipped.
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? '';
      line = `${line.replace(/\\\s*$/, ' ')}${/^\s*#/.test(next) ? '' : next.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
    if (m)
      instructions.push({
        keyword: (m[1] as string).toUpperCase(),
        args: (m[2] ?? '').trim(),
        line: first + 1,
      });
  }

  const args = new Map<string, string>();
  const stages: Stage[] = [];
  let current: { from: string; name: string | undefined; instructions: Instruction[] } | undefined;
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      const image = (parts[0] ?? '').replace(/\$\{?(\w+)\}?/g, (_, name: string) => args.get(name) ?? '');
      current = {
        from: image,
        name: parts[1]?.toUpperCase() === 'AS' ? parts[2] : undefined,
        instructions: [],
      };
      stages.push(current);
    } else if (!current && ins.keyword === 'ARG') {
      const [name, value] = ins.args.split('=', 2);
      if (name) args.set(name.trim(), (value ?? '').trim());
    } else {
      current?.instructions.push(ins);
    }
  }
  return { args, stages };
}

/** The JSON array of an exec-form instruction, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  const json = args.replace(/^(--[a-z-]+=\S+\s+)*/, '').replace(/^CMD\s+/, '');
  if (!json.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}
