// The published JSON Schema of the dialect file (docs/dialect-file.schema.json), written from the
// zod schema so the two cannot drift (json-schema.test.ts fails when the committed file is stale;
// `node scripts/dialect-file-schema.mjs` rewrites it after `pnpm build`).

import * as z from 'zod';
import { dialectFileSchema } from './schema.js';

/** The JSON Schema text, as committed (two-space indent, final newline). */
export function dialectFileJsonSchema(): string {
  const schema = z.toJSONSchema(dialectFileSchema, { io: 'input' });
  return `${JSON.stringify({ ...schema, $id: 'https://batch-proxy.dev/dialect-file.schema.json', title: 'batch-proxy dialect file' }, null, 2)}\n`;
}
