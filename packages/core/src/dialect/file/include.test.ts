// `calls.include`: an API whose batch endpoint takes only some resources names them; every other path
// below the scope goes alone, as an `exclude`d one does.

import { describe, expect, it } from 'vitest';
import { fileDialect } from './dialect.js';
import { parseDialectFile } from './validate.js';

const base = {
  name: 'inc',
  upstreamUrl: 'https://api.example',
  budget: { ratePerSec: 1, burst: 1 },
  maxOps: 5,
  scope: '/api/{tenant}',
  batch: { path: '/api/{tenant}/batch', envelope: { $: 'ops' } },
  op: { id: { $: 'id' }, method: { $: 'method' }, url: { $: 'path', query: true }, body: { $: 'body' } },
  results: { match: { by: 'id', at: '/id' }, status: '/status', body: '/body' },
};

function dialectWith(calls: Record<string, unknown>) {
  const parsed = parseDialectFile({ ...base, calls });
  if ('error' in parsed) throw new Error(parsed.error);
  return fileDialect(parsed.spec);
}

const goesAlone = (d: ReturnType<typeof dialectWith>, path: string) =>
  d.isBatchEndpoint({ appId: 't1', path });

describe('calls.include', () => {
  it('batches only the paths it lists; every other path goes alone', () => {
    const d = dialectWith({ include: ['/orders', '/orders/**'] });
    expect(goesAlone(d, '/orders')).toBe(false);
    expect(goesAlone(d, '/orders/7')).toBe(false);
    expect(goesAlone(d, '/orders/7/items')).toBe(false);
    expect(goesAlone(d, '/order')).toBe(true);
    expect(goesAlone(d, '/customers/1')).toBe(true);
    expect(goesAlone(d, '/batch')).toBe(true);
  });

  it('still goes by exclude inside what it includes', () => {
    const d = dialectWith({ include: ['/orders/**'], exclude: ['/orders/*/export'] });
    expect(goesAlone(d, '/orders/7')).toBe(false);
    expect(goesAlone(d, '/orders/7/export')).toBe(true);
  });

  it('batches every path when absent', () => {
    const d = dialectWith({});
    expect(goesAlone(d, '/customers/1')).toBe(false);
    expect(goesAlone(d, '/anything/at/all')).toBe(false);
  });

  it.each([
    [[], 'calls.include'],
    [['orders'], 'calls.include[0]'],
  ])('refuses include %j, naming %s', (include, field) => {
    const parsed = parseDialectFile({ ...base, calls: { include } });
    expect('error' in parsed ? parsed.error : 'valid').toContain(field);
  });
});
