// The text of a file beside this module: the status page's style sheet, markup and browser script are
// real .css/.html/.js files (checked by biome; the script by tsc, tsconfig.assets.json), not strings in
// TypeScript. Unbundled (the unit tests from src/, tsc's dist/modules/, to which bundle.mjs copies the
// files) this reads the file once, at load; in the bundle dist/main.js each call of it is replaced by
// the file's text (bundle.mjs, `inlineAssets`), so the image, which keeps neither src/ nor
// dist/modules/, reads no file.

import { readFileSync } from 'node:fs';

/** The text of `name`, a path relative to this folder written as a string literal (`'./page.css'`). */
export function asset(name: string): string {
  return readFileSync(new URL(name, import.meta.url), 'utf8');
}
