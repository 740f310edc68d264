// A dialect described as data (DIALECT_FILE): the format, its check, and its interpreter.

export { fileDialect } from './dialect.js';
export { type DialectFile, type DialectFileInput, dialectFileSchema } from './schema.js';
export { parseDialectFile } from './validate.js';
