// The worked example of docs/dialect-file.md is a real file: it validates, and builds and reads the
// very batch the page shows.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fileDialect } from './dialect.js';
import { parseDialectFile } from './validate.js';

const page = readFileSync(new URL('../../../../../docs/dialect-file.md', import.meta.url), 'utf8');
const block = /<!-- dialect-file-example[^>]*-->\n```json\n([\s\S]*?)\n```/.exec(page)?.[1];

describe('docs/dialect-file.md worked example', () => {
  const parsed = parseDialectFile(JSON.parse(block ?? 'null'));
  if ('error' in parsed) throw new Error(parsed.error);
  const acme = fileDialect(parsed.spec);

  it('builds the batch the page shows', () => {
    const target = acme.parseTarget('/api/t1/orders/7');
    expect(target).toEqual({ appId: 't1', path: '/orders/7' });
    const get = acme.toOp({
      method: 'GET',
      target: { appId: 't1', path: '/orders/7' },
      query: new URLSearchParams('expand=items'),
      search: '?expand=items',
      body: undefined,
      apiVersion: undefined,
      headers: {},
    });
    const post = acme.toOp({
      method: 'POST',
      target: { appId: 't1', path: '/orders' },
      query: new URLSearchParams(),
      search: '',
      body: '{"sku":"A1"}',
      apiVersion: undefined,
      headers: { 'if-match': '"v3"' },
    });
    if (!('op' in get) || !('op' in post)) throw new Error('expected ops');
    const request = acme.batchRequest('t1', [get.op, post.op]);
    expect(request.path).toBe('/api/t1/batch');
    expect(request.body).toBe(
      '{"requests":[{"id":"r0","method":"GET","url":"/orders/7?expand=items"},' +
        '{"id":"r1","method":"POST","url":"/orders","body":{"sku":"A1"},"headers":{"if-match":"\\"v3\\""}}]}',
    );
  });

  it('reads the answer the page shows, in any order, headers relayed', () => {
    const answer =
      '{"responses":[{"id":"r1","status":201,"headers":{"ETag":"\\"v4\\""},"body":{"id":8}},' +
      '{"id":"r0","status":200,"body":{"id":7,"items":[]}}]}';
    expect(acme.readBatchAnswer(200, answer, 2)).toEqual({
      kind: 'results',
      results: [
        { ok: true, status: 200, body: { id: 7, items: [] }, headers: {} },
        { ok: true, status: 201, body: { id: 8 }, headers: { etag: '"v4"' } },
      ],
    });
  });

  it('passes through what the page says passes through', () => {
    expect(acme.isBatchEndpoint({ appId: 't1', path: '/batch' })).toBe(true);
    expect(acme.isBatchEndpoint({ appId: 't1', path: '/uploads/a/b' })).toBe(true);
    expect(acme.isBatchEndpoint({ appId: 't1', path: '/orders' })).toBe(false);
    expect(acme.requestHeader('idempotency-key')).toBe('pass');
    expect(acme.requestHeader('if-match')).toBe('carry');
    expect(acme.requestHeader('x-client-version')).toBe('drop');
  });
});
