// Loader hooks for module-probe.mjs: a synchronous write to fd 2 so the line is out before the
// module runs, whatever the main thread does next.
import { writeSync } from 'node:fs';

const seen = new Set();
// The last `node_modules/` segment names the package (pnpm nests them under .pnpm/<id>/node_modules).
const PACKAGE = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*\/node_modules\/)/;

export async function load(url, context, nextLoad) {
  const name = PACKAGE.exec(url)?.[1];
  if (name !== undefined && !seen.has(name)) {
    seen.add(name);
    writeSync(2, `module-probe: ${name}\n`);
  }
  return nextLoad(url, context);
}
