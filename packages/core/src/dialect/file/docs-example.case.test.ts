// The worked example of docs/dialect-file.md (a generic `POST /api/{tenant}/batch`) through the
// conformance suite every dialect passes, its upstream played by a wire written from the page alone.

import { readFileSync } from 'node:fs';
import type { FakeOp, FakeWire } from '../../testing/fake-transport.js';
import { dialectConformance } from '../dialect.case.js';
import { fileDialect } from './dialect.js';
import { parseDialectFile } from './validate.js';

const page = readFileSync(new URL('../../../../../docs/dialect-file.md', import.meta.url), 'utf8');
const block = /<!-- dialect-file-example[^>]*-->\n```json\n([\s\S]*?)\n```/.exec(page)?.[1];
const parsed = parseDialectFile(JSON.parse(block ?? 'null'));
if ('error' in parsed) throw new Error(parsed.error);

interface AcmeRequest {
  readonly id: string;
  readonly method: string;
  readonly url: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** Acme's side, as the page describes it: `{"requests":[…]}` in, `{"responses":[…]}` out. */
const acmeWire: FakeWire = {
  isBatch: (request) => request.path.endsWith('/batch'),
  decodeBatch: (body) =>
    (JSON.parse(body) as { requests: AcmeRequest[] }).requests.map(
      (r): FakeOp => ({ id: r.id, method: r.method, path: r.url, body: r.body }),
    ),
  decodeSingle: (request) => ({
    id: 0,
    method: request.method,
    path: request.path.replace(/^\/api\/[^/]+/, ''),
    body: request.body === undefined ? undefined : JSON.parse(request.body),
  }),
  encodeBatch: (replies) => ({
    responses: replies.map(([op, reply]) => ({
      id: op.id,
      status: reply.status,
      ...(reply.headers ? { headers: reply.headers } : {}),
      ...(reply.body === undefined ? {} : { body: reply.body }),
    })),
  }),
};

dialectConformance('acme (docs/dialect-file.md worked example)', {
  dialect: fileDialect(parsed.spec),
  wire: acmeWire,
  scope: 't1',
  path: '/users/u1',
  maxOps: 20,
  emptyPayload: undefined,
  opThrottle: 'again',
  throttleScope: 'app',
  carries: {
    name: 'if-match',
    value: '"v3"',
    onWire: (batchBody, index) =>
      (JSON.parse(batchBody) as { requests: AcmeRequest[] }).requests[index]?.headers,
  },
  relays: { name: 'etag', value: '"v4"' },
  writeWithoutBody: { payload: undefined },
});
