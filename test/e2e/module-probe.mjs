// `node --import <this file> main.js`: reports, on stderr, each package the process loads from
// node_modules (one `module-probe: <name>` line per package, the first time), so a test can tell
// which dependencies a mode of the proxy pulls in. The hooks run on Node's loader thread.
import { register } from 'node:module';

register('./module-probe-hooks.mjs', import.meta.url);
