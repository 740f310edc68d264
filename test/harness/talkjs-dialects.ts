// The two ways the proxy speaks TalkJS: the built-in module (DIALECT=talkjs, the default) and the
// same API written as a dialect file (DIALECT_FILE=dialects/talkjs.json, docs/dialect-file.md). The
// TalkJS end-to-end suites run once per way (`describe.each`): the file is proven as the module is.

import { join } from 'node:path';
import { repoRoot } from './repo-root.js';

export interface TalkjsDialect {
  readonly name: string;
  /** What the proxy's environment adds for it. */
  readonly env: Readonly<Record<string, string>>;
}

export const TALKJS_DIALECTS: readonly TalkjsDialect[] = [
  { name: 'DIALECT=talkjs', env: {} },
  {
    name: 'DIALECT_FILE=dialects/talkjs.json',
    env: { DIALECT_FILE: join(repoRoot(), 'dialects/talkjs.json') },
  },
];
