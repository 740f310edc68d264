// Writes docs/dialect-file.schema.json from the dialect file's zod schema (run after `pnpm build`).
import { writeFileSync } from 'node:fs';
import { dialectFileJsonSchema } from '../packages/core/dist/dialect/file/json-schema.js';

writeFileSync(new URL('../docs/dialect-file.schema.json', import.meta.url), dialectFileJsonSchema());
