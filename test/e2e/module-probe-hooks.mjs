// Loader hooks for module-probe.mjs: a synchronous write to fd 2 so the line is out before the
// module runs, whatever the main thread does next. Names each package loaded from node_modules, and
// each file of the built proxy (`proxy:<file>`: main.js and the chunks it imports on demand).
import { writeSync } from 'node:fs';

const seen = new Set();
// The last `node_modules/` segment names the package (pnpm nests them under .pnpm/<id>/node_modules).
const PACKAGE = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*\/node_modules\/)/;
const PROXY_FILE = /\/apps\/proxy\/dist\/([^?#]+)/;

export async function load(url, context, nextLoad) {
  const pkg = PACKAGE.exec(url)?.[1];
  const own = pkg === undefined ? PROXY_FILE.exec(url)?.[1] : undefined;
  const name = pkg ?? (own === undefined ? undefined : `proxy:${own}`);
  if (name !== undefined && !seen.has(name)) {
    seen.add(name);
    writeSync(2, `module-probe: ${name}\n`);
  }
  return nextLoad(url, context);
}
