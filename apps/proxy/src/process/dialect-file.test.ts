// DIALECT_FILE through loadConfig: the file read at start takes DIALECT's place, carrying its
// upstream, budget, auth modes and byte cap; a mistake is one line naming the file and the field.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { talkjs } from '@batch-proxy/core';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const TALKJS_FILE = fileURLToPath(new URL('../../../../dialects/talkjs.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dialect-file-'));
const talkjsSpec = JSON.parse(readFileSync(TALKJS_FILE, 'utf8')) as Record<string, unknown>;

/** A dialect file: TalkJS's with `change` applied, written to a temporary path. */
function fileWith(name: string, change: (spec: Record<string, unknown>) => unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(change(structuredClone(talkjsSpec))));
  return path;
}

describe('DIALECT_FILE', () => {
  it('takes the place of DIALECT: its dialect, upstream, budget and byte cap', () => {
    const c = loadConfig({ DIALECT_FILE: TALKJS_FILE });
    expect(c.dialect).not.toBe(talkjs);
    expect(c.dialect.name).toBe('talkjs');
    expect(c.dialect.maxOps).toBe(10);
    expect(c.UPSTREAM_URL).toBe('https://api.talkjs.com');
    expect([c.BATCH_RATE_PER_SEC, c.BATCH_BURST]).toEqual([1, 500]);
    expect(c.BATCH_MAX_BYTES).toBe(4 * 1_048_576);
    const capped = fileWith('capped.json', (s) => ({
      ...s,
      maxBytes: 2048,
      upstreamUrl: 'http://up.example',
    }));
    expect(loadConfig({ DIALECT_FILE: capped }).BATCH_MAX_BYTES).toBe(2048);
    expect(loadConfig({ DIALECT_FILE: capped, BATCH_MAX_BYTES: '100' }).BATCH_MAX_BYTES).toBe(100);
    expect(loadConfig({ DIALECT_FILE: capped }).UPSTREAM_URL).toBe('http://up.example');
  });

  it('caps BATCH_MAX_OPS at the file maxOps', () => {
    expect(() => loadConfig({ DIALECT_FILE: TALKJS_FILE, BATCH_MAX_OPS: '11' })).toThrow(
      /^invalid configuration: BATCH_MAX_OPS: at most 10 for the talkjs dialect/,
    );
    expect(loadConfig({ DIALECT_FILE: TALKJS_FILE, BATCH_MAX_OPS: '10' }).BATCH_MAX_OPS).toBe(10);
  });

  it('requires a budget when the file says so, with its why', () => {
    const path = fileWith('required.json', (s) => ({ ...s, budget: { required: 'limits vary per org' } }));
    expect(() => loadConfig({ DIALECT_FILE: path })).toThrow(
      `invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT_FILE=${path}: limits vary per org`,
    );
    const c = loadConfig({ DIALECT_FILE: path, BATCH_RATE_PER_SEC: '3' });
    expect([c.BATCH_RATE_PER_SEC, c.BATCH_BURST]).toEqual([3, 3]);
  });

  it('allows the auth modes the file names, and only those', () => {
    const path = fileWith('passthrough.json', (s) => ({ ...s, authModes: ['passthrough'] }));
    expect(() => loadConfig({ DIALECT_FILE: path, AUTH_MODE: 'app-token', APP_SECRETS_FILE: '/x' })).toThrow(
      `invalid configuration: AUTH_MODE: DIALECT_FILE=${path} allows passthrough, not app-token`,
    );
  });

  it('reports a mistake in one line naming the file and the field', () => {
    const path = fileWith('bad-method.json', (s) => ({ ...s, calls: { methods: ['GET', 'FETCH'] } }));
    const thrown = (() => {
      try {
        loadConfig({ DIALECT_FILE: path });
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    })();
    expect(thrown).toMatch(
      new RegExp(`^invalid configuration: DIALECT_FILE: ${path}: calls\\.methods\\[1\\]: .*"GET"[^\\n]*$`),
    );
  });

  it('reports a file that is missing or not JSON', () => {
    expect(() => loadConfig({ DIALECT_FILE: join(dir, 'none.json') })).toThrow(
      `invalid configuration: DIALECT_FILE: ${join(dir, 'none.json')}: cannot read it (ENOENT)`,
    );
    const path = join(dir, 'not-json.json');
    writeFileSync(path, '{"name": ');
    expect(() => loadConfig({ DIALECT_FILE: path })).toThrow(
      /^invalid configuration: DIALECT_FILE: .*: not JSON \(/,
    );
  });

  it('refuses DIALECT and DIALECT_FILE together', () => {
    expect(() => loadConfig({ DIALECT_FILE: TALKJS_FILE, DIALECT: 'graph' })).toThrow(
      'invalid configuration: DIALECT_FILE: set DIALECT or DIALECT_FILE, not both',
    );
  });
});
