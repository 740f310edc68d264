// The Lua scripts of the Redis limiter: one file per command, `<name>-<numKeys>.lua` (bullmq's
// convention), each starting with `--- @include "includes/<file>"` lines for the shared pieces. Read
// once at start-up from next to this module (the build copies them there).

import { readdirSync, readFileSync } from 'node:fs';

export type ScriptName = 'acquire' | 'settle' | 'pause' | 'charge' | 'peek';

export interface Script {
  readonly name: ScriptName;
  readonly numberOfKeys: number;
  /** The source with its includes spliced in. */
  readonly lua: string;
}

const DIR = new URL('./scripts/', import.meta.url);
const INCLUDE = /^--- @include "([\w/-]+)"$/gm;
const FILE = /^(acquire|settle|pause|charge|peek)-(\d+)\.lua$/;

function withIncludes(source: string, seen: ReadonlySet<string> = new Set()): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    if (seen.has(name)) return ''; // each include once
    const text = readFileSync(new URL(`${name}.lua`, DIR), 'utf8');
    return withIncludes(text, new Set([...seen, name]));
  });
}

function load(): ReadonlyMap<ScriptName, Script> {
  const scripts = new Map<ScriptName, Script>();
  for (const file of readdirSync(DIR)) {
    const match = FILE.exec(file);
    if (!match) continue;
    const name = match[1] as ScriptName;
    const lua = withIncludes(readFileSync(new URL(file, DIR), 'utf8'));
    scripts.set(name, { name, numberOfKeys: Number(match[2]), lua });
  }
  return scripts;
}

export const scripts: ReadonlyMap<ScriptName, Script> = load();

/** The command name a script is registered under on an ioredis client (`defineCommand`). */
export function commandName(name: ScriptName): string {
  return `batchProxy_${name}`;
}
