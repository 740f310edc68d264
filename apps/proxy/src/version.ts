// The proxy's version, from apps/proxy/package.json: one directory above src/ (tests) and above the
// bundle dist/main.js, two above tsc's per-file output dist/modules/ (which tests import one module of).

import { existsSync, readFileSync } from 'node:fs';

const packageJson = ['../package.json', '../../package.json']
  .map((path) => new URL(path, import.meta.url))
  .find((url) => existsSync(url)) as URL;

export const VERSION: string = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
