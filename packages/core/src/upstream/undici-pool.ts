// undici's Pool without undici's index: the index loads fetch, WebSocket, the cache stores, the
// mock agents and every interceptor — about four times the start-up time and twice the memory of
// the pool alone (issue #17: 230 → 56 ms, 20 → 11 MiB measured with `require`). What the index does
// for a Pool is one line, copied here: it puts the request API on the Dispatcher prototype.
// Depends on undici's file layout (it has no "exports" map, so the paths are public in practice);
// an upgrade that moves them fails every upstream test at once, not quietly.

import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'));

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors;
