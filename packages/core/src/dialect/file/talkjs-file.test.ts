// dialects/talkjs.json against the built-in TalkJS module, as properties: the same calls make the same
// ops and the same batch call, byte for byte, and the same answers make the same results.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Method, OpInput, OpRequest } from '../dialect.js';
import { talkjs } from '../talkjs.js';
import { fileDialect } from './dialect.js';
import { parseDialectFile } from './validate.js';

const parsed = parseDialectFile(
  JSON.parse(readFileSync(new URL('../../../../../dialects/talkjs.json', import.meta.url), 'utf8')),
);
if ('error' in parsed) throw new Error(parsed.error);
const file = fileDialect(parsed.spec);

const segment = fc.stringMatching(/^[a-zA-Z0-9_~%-]{1,8}$/);
const call: fc.Arbitrary<OpInput> = fc
  .record({
    method: fc.constantFrom<Method>('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
    path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
    query: fc.array(fc.tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })), { maxLength: 3 }),
    body: fc.option(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      { nil: undefined },
    ),
    apiVersion: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
  })
  .map(({ method, path, query, body, apiVersion }) => ({
    method,
    target: { appId: 'app1', path },
    query: new URLSearchParams(query),
    body,
    apiVersion,
  }));

describe('dialects/talkjs.json and the built-in talkjs module', () => {
  it('make the same op, or refuse with the same reason, for any call', () => {
    fc.assert(
      fc.property(call, (input) => {
        const a = talkjs.toOp(input);
        const b = file.toOp(input);
        if ('reason' in a) expect(b).toMatchObject({ reason: a.reason });
        else expect(b).toEqual(a);
      }),
    );
  });

  it('send the same batch call, byte for byte, and the same single call', () => {
    fc.assert(
      fc.property(
        fc.array(call, { minLength: 1, maxLength: 10 }),
        fc.string({ minLength: 1, maxLength: 6 }),
        (calls, appId) => {
          const ops = calls.flatMap((c) => {
            const built = talkjs.toOp(c);
            return 'op' in built ? [built.op] : [];
          });
          expect(file.batchRequest(appId, ops)).toEqual(talkjs.batchRequest(appId, ops));
          for (const op of ops)
            expect(file.singleRequest(appId, op)).toEqual(talkjs.singleRequest(appId, op));
        },
      ),
    );
  });

  it('read the same results from any well-formed answer, in any order', () => {
    const entry = fc.tuple(
      fc.nat(12),
      fc.integer({ min: 100, max: 700 }),
      fc.option(fc.jsonValue(), { nil: undefined }),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 14 }), fc.integer({ min: 1, max: 10 }), (entries, count) => {
        const body = JSON.stringify(
          entries.map(([seq, status, b]) => (b === undefined ? [seq, status] : [seq, status, b])),
        );
        const ops: OpRequest[] = [];
        const a = talkjs.readBatchAnswer(200, body, count, undefined, { ops, headers: {} });
        const b = file.readBatchAnswer(200, body, count, undefined, { ops, headers: {} });
        expect(b).toEqual(a);
      }),
    );
  });

  it('agree on paths, headers and the batch endpoint', () => {
    for (const path of [
      '/v1/app1/users/u1',
      '/v1/a%20b/x',
      '/v1/app1/',
      '/v1//users',
      '/v2/app1/users',
      '/v1/app1',
      '/v1/%E0/x',
    ])
      expect(file.parseTarget(path)).toEqual(talkjs.parseTarget(path));
    for (const name of ['talkjs-rest-version', 'if-match', 'accept', 'x-custom', 'traceparent'])
      expect(file.requestHeader(name)).toBe(talkjs.requestHeader(name));
    for (const path of ['/batch', '/batch/', '/users', '/batches'])
      expect(file.isBatchEndpoint({ appId: 'a', path })).toBe(talkjs.isBatchEndpoint({ appId: 'a', path }));
    expect(file.answerHeaders({ etag: 'x' })).toEqual(talkjs.answerHeaders({ etag: 'x' }));
    expect([file.maxOps, file.apiVersionHeader, file.cost ?? 'call']).toEqual([
      talkjs.maxOps,
      talkjs.apiVersionHeader,
      talkjs.cost ?? 'call',
    ]);
  });
});
