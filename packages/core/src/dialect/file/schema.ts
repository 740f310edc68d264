// The dialect file format (issue #29 item 3, docs/dialect-file.md): one zod schema is the source of
// truth for the types, the start-up validation and the published JSON Schema
// (docs/dialect-file.schema.json, written from this by `z.toJSONSchema`).

import * as z from 'zod';
import { batchableMethods } from '../dialect.js';

const method = z.enum(batchableMethods);
const methods = z.array(method);
const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/, 'expected a lower-case header name')
  .describe('A request or answer header name, in lower case.');
/** RFC 6901: empty (the whole document) or `/`-separated tokens. */
const pointer = z
  .string()
  .regex(/^(\/.*)?$/, 'expected a JSON pointer ("" or starting with "/")')
  .describe('A JSON pointer (RFC 6901) into one result, or into the batch answer.');
/** A path below the scope with `*` (one segment) and `**` (the rest) as wildcards. */
const pathPattern = z
  .string()
  .regex(/^\//, 'expected a path starting with "/"')
  .describe('A path below the scope; `*` matches one segment, a final `**` any rest.');

/**
 * A JSON value with places (objects `{"$": name, ...}`) the interpreter fills in; checked place by
 * place by validate.ts (the places are listed in docs/dialect-file.md).
 */
const template = z
  .json()
  .describe('A JSON template: any JSON value, with places written {"$": "<place>", ...}.');

export const dialectFileSchema = z
  .strictObject({
    $schema: z.optional(z.string()),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lower-case name (a-z, 0-9, . _ -)'),
    description: z.optional(z.string()),
    upstreamUrl: z.url({ protocol: /^https?$/ }).describe('Where calls go when UPSTREAM_URL is unset.'),
    budget: z
      .union([
        z.strictObject({ ratePerSec: z.number().positive(), burst: z.int().positive() }),
        z.strictObject({ required: z.string().min(1) }),
      ])
      .describe(
        'BATCH_RATE_PER_SEC and BATCH_BURST when unset, or {"required": "why"}: the operator must set them.',
      ),
    authModes: z._default(z.array(z.enum(['passthrough', 'app-token'])).min(1), ['passthrough']),
    cost: z
      ._default(z.enum(['call', 'op']), 'call')
      .describe('A batch call counts as one call, or one per op.'),
    maxOps: z.int().min(1).max(1000),
    maxBytes: z.optional(z.int().positive()).describe('BATCH_MAX_BYTES when unset.'),
    caseInsensitivePaths: z._default(z.boolean(), false),
    throttleScope: z._default(z.enum(['app', 'credential']), 'app'),
    scope: z
      .string()
      .regex(
        /^(\/([^/{}]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+$/,
        'expected a path like /v1/{app}: literal or {capture} segments',
      )
      .describe('The path prefix every call of the API starts with; each {name} segment is a capture.'),
    apiVersionHeader: z
      .optional(headerName)
      .describe('The header that selects the API version; its value fills the apiVersion place.'),
    calls: z._default(
      z.strictObject({
        methods: z._default(methods.min(1), [...batchableMethods]),
        include: z
          .optional(z.array(pathPattern).min(1))
          .describe('When set, only paths below the scope that match one of these may batch.'),
        exclude: z._default(z.array(pathPattern), []),
        query: z._default(z.enum(['object', 'path']), 'path'),
        queryMethods: z._default(methods, [...batchableMethods]),
        bodyMethods: z._default(methods, ['POST', 'PUT', 'PATCH', 'DELETE']),
        bodyRequired: z._default(methods, []),
      }),
      {
        methods: [...batchableMethods],
        exclude: [],
        query: 'path' as const,
        queryMethods: [...batchableMethods],
        bodyMethods: ['POST', 'PUT', 'PATCH', 'DELETE'],
        bodyRequired: [],
      },
    ),
    headers: z._default(
      z.strictObject({
        carry: z._default(z.array(headerName), []),
        drop: z._default(z.array(headerName), []),
        pass: z._default(z.array(headerName), []),
        relay: z._default(z.boolean(), false),
      }),
      { carry: [], drop: [], pass: [], relay: false },
    ),
    batch: z.strictObject({
      method: z._default(z.enum(['POST', 'PUT', 'PATCH']), 'POST'),
      path: z.string().regex(/^\//, 'expected a path starting with "/"'),
      headers: z._default(z.record(headerName, z.string()), { 'content-type': 'application/json' }),
      envelope: template,
    }),
    op: template,
    results: z.strictObject({
      at: z._default(pointer, ''),
      match: z.union([
        z.strictObject({ by: z.literal('id'), at: pointer }),
        z.strictObject({ by: z.literal('position') }),
      ]),
      status: pointer,
      body: pointer,
      headers: z.optional(pointer),
      emptyBody: z.optional(z.json()),
    }),
    again: z.optional(
      z.strictObject({
        status: z.array(z.int().min(400).max(599)).min(1),
        retryAfterHeader: z._default(headerName, 'retry-after'),
      }),
    ),
  })
  .describe('A batch API described as data (batch-proxy DIALECT_FILE).');

export type DialectFile = z.output<typeof dialectFileSchema>;
export type DialectFileInput = z.input<typeof dialectFileSchema>;
