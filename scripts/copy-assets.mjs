// Copies non-TypeScript assets (Lua scripts) from src to dist, keeping their folders.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [from, to, ext] = process.argv.slice(2);
if (!from || !to || !ext) throw new Error('usage: copy-assets.mjs <from> <to> <ext>');

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(ext)) cpSync(path, join(to, path.slice(from.length)), { recursive: true });
  }
}
walk(from);
