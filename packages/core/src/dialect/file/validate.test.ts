// Each rule of the dialect file's check: a mistake is one line naming the field's path.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fieldPath, parseDialectFile } from './validate.js';

const talkjs = JSON.parse(
  readFileSync(new URL('../../../../../dialects/talkjs.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

// biome-ignore lint/suspicious/noExplicitAny: each test edits the file's JSON where it likes
type Loose = any;

/** The error for TalkJS's file with `change` applied (undefined: it is valid). */
function errorWith(change: (spec: Loose) => void): string | undefined {
  const spec: Loose = structuredClone(talkjs);
  change(spec);
  const parsed = parseDialectFile(spec);
  return 'error' in parsed ? parsed.error : undefined;
}

describe('parseDialectFile', () => {
  it('accepts dialects/talkjs.json and fills in the defaults', () => {
    const parsed = parseDialectFile(talkjs);
    if ('error' in parsed) throw new Error(parsed.error);
    expect(parsed.spec.calls.methods).toEqual(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
    expect(parsed.spec.calls.exclude).toEqual([]);
    expect(parsed.spec.caseInsensitivePaths).toBe(false);
    expect(parsed.spec.throttleScope).toBe('app');
    expect(parsed.spec.headers).toEqual({ carry: [], drop: [], pass: [], relay: false });
  });

  it('names the field of a schema mistake, array positions included', () => {
    expect(
      errorWith((s) => {
        s.calls.methods = ['GET', 'FETCH'];
      }),
    ).toMatch(/^calls\.methods\[1\]: .*"GET"/);
    expect(errorWith((s) => delete s.maxOps)).toMatch(/^maxOps: /);
    expect(
      errorWith((s) => {
        s.maxOps = 0;
      }),
    ).toMatch(/^maxOps: /);
    expect(
      errorWith((s) => {
        s.maxOps = 1;
      }),
    ).toBeUndefined();
    expect(
      errorWith((s) => {
        s.extra = 1;
      }),
    ).toMatch(/^\(the file\): .*extra/);
    expect(
      errorWith((s) => {
        s.scope = '/v1/{app';
      }),
    ).toMatch(/^scope: expected a path like/);
    expect(
      errorWith((s) => {
        s.results.at = 'x';
      }),
    ).toMatch(/^results\.at: expected a JSON pointer/);
    expect(
      errorWith((s) => {
        s.headers.carry = ['If-Match'];
      }),
    ).toMatch(/^headers\.carry\[0\]: expected a lower-case/);
  });

  it('names the deepest field of a union mistake', () => {
    expect(
      errorWith((s) => {
        s.results.match = { by: 'id', at: 3 };
      }),
    ).toMatch(/^results\.match\.at: /);
    expect(
      errorWith((s) => {
        s.budget = { ratePerSec: -1, burst: 5 };
      }),
    ).toMatch(/^budget\.ratePerSec: /);
  });

  it('names the place of a template mistake', () => {
    expect(
      errorWith((s) => {
        s.op[1] = { $: 'verb' };
      }),
    ).toBe('op[1].$: expected one of ops, id, method, path, query, body, headers, apiVersion');
    expect(
      errorWith((s) => {
        s.op[1] = { $: 'ops' };
      }),
    ).toBe('op[1].$: "ops" is a place of the envelope template');
    expect(
      errorWith((s) => {
        s.batch.envelope = { list: { $: 'id' } };
      }),
    ).toBe('batch.envelope.list.$: "id" is a place of the op template');
    expect(
      errorWith((s) => {
        s.batch.envelope = { list: [] };
      }),
    ).toBe('batch.envelope: has no {"$": "ops"} place');
    expect(
      errorWith((s) => {
        s.op[0] = { $: 'id', prefx: 'op' };
      }),
    ).toBe('op[0].prefx: "id" takes prefix, type');
    expect(
      errorWith((s) => {
        s.op[0] = { $: 'id', prefix: 1 };
      }),
    ).toBe('op[0].prefix: expected a string');
    expect(
      errorWith((s) => {
        s.op[0] = { $: 'id', type: 'uuid' };
      }),
    ).toBe('op[0].type: expected "number" or "string"');
    expect(
      errorWith((s) => {
        s.op[3].onGet = 'path';
      }),
    ).toBe('op[3].onGet: expected "query"');
    expect(
      errorWith((s) => {
        s.op[2].whole = 'yes';
      }),
    ).toBe('op[2].whole: expected true or false');
    expect(
      errorWith((s) => {
        s.op[2].query = 1;
      }),
    ).toBe('op[2].query: expected true or false');
    expect(errorWith((s) => s.op.push({ $: 'method' }))).toBe('op[5].$: "method" appears twice');
    expect(
      errorWith((s) => {
        s.op[4].$if = 'method';
      }),
    ).toBe('op[4].$if: expected one of query, body, headers, apiVersion');
    expect(
      errorWith((s) => {
        s.op[1] = 'GET';
      }),
    ).toBe('op: has no {"$": "method"} place');
    expect(
      errorWith((s) => {
        s.op[2] = '/x';
      }),
    ).toBe('op: has no {"$": "path"} place');
    expect(
      errorWith((s) => {
        s.op[0] = { $: 'ops' };
      }),
    ).toMatch(/^op\[0\]/);
  });

  it('refuses a required element after one that may be left out', () => {
    expect(errorWith((s) => s.op.push(1))).toBe(
      'op[5]: follows an element that may be left out: put optional ones last',
    );
    expect(errorWith((s) => s.op.splice(3, 0, { $: 'headers' }))).toMatch(/^op\[4\]: follows an element/);
    // With "absent" a place always has a value: anything may follow it.
    expect(errorWith((s) => s.op.splice(4, 0, { $: 'query', absent: null }))).toBeUndefined();
  });

  it('checks the fields that depend on each other', () => {
    expect(
      errorWith((s) => {
        s.op[0] = 0;
      }),
    ).toBe('results.match: matching by id needs an {"$": "id"} place in op');
    expect(
      errorWith((s) => {
        s.op[0] = 0;
        s.results.match = { by: 'position' };
      }),
    ).toBeUndefined();
    expect(
      errorWith((s) => {
        s.op[3] = { $: 'body', absent: {} };
      }),
    ).toMatch(/^calls\.query: "object" needs a query place/);
    expect(
      errorWith((s) => {
        s.op[3] = { $: 'body', absent: {} };
        s.calls.queryMethods = [];
      }),
    ).toBeUndefined();
    expect(
      errorWith((s) => {
        s.calls.query = 'path';
      }),
    ).toMatch(/^calls\.query: "path" needs/);
    expect(
      errorWith((s) => {
        s.calls.query = 'path';
        s.op[2].query = true;
      }),
    ).toBeUndefined();
    expect(
      errorWith((s) => {
        s.batch.path = '/v1/{tenant}/batch';
      }),
    ).toBe('batch.path: {tenant} is not a capture of scope (/v1/{app})');
    expect(errorWith((s) => s.op.pop())).toBe('apiVersionHeader: needs an {"$": "apiVersion"} place in op');
    expect(
      errorWith((s) => {
        s.headers.carry = ['if-match'];
      }),
    ).toBe('headers.carry: carried headers need an {"$": "headers"} place in op');
    expect(
      errorWith((s) => {
        s.headers = { drop: ['x-a'], pass: ['x-a'] };
      }),
    ).toBe('headers: "x-a" is in two lists');
    expect(
      errorWith((s) => {
        s.op.splice(4, 0, { $: 'headers', absent: {} });
        s.headers = { carry: ['x-a'], pass: ['x-a'] };
      }),
    ).toBe('headers: "x-a" is in two lists');
  });

  it('writes field paths as they are read', () => {
    expect(fieldPath([])).toBe('(the file)');
    expect(fieldPath(['op', 2, '$'])).toBe('op[2].$');
    expect(fieldPath([0, 'a'])).toBe('[0].a');
  });
});
