import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dialectFileJsonSchema } from './json-schema.js';

describe('docs/dialect-file.schema.json', () => {
  it('is the JSON Schema of the current format (else: pnpm build && node scripts/dialect-file-schema.mjs)', () => {
    const committed = readFileSync(
      new URL('../../../../../docs/dialect-file.schema.json', import.meta.url),
      'utf8',
    );
    // Compared as JSON: the committed file is formatted by biome.
    expect(JSON.parse(committed)).toEqual(JSON.parse(dialectFileJsonSchema()));
  });
});
