// DIALECT_FILE=dialects/salesforce-composite.json through loadConfig: an org's API limit varies, so
// the proxy refuses to start without a budget and says why; the ceiling of BATCH_MAX_OPS is 25.

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const FILE = fileURLToPath(new URL('../../../../dialects/salesforce-composite.json', import.meta.url));

describe('DIALECT_FILE=dialects/salesforce-composite.json', () => {
  it('requires BATCH_RATE_PER_SEC, naming why', () => {
    expect(() => loadConfig({ DIALECT_FILE: FILE })).toThrow(
      /^invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT_FILE=.*salesforce-composite\.json: a Salesforce org's API request limit depends on its edition and licenses/,
    );
  });

  it('starts with a budget: 25 subrequests at most, login.salesforce.com unless told', () => {
    const c = loadConfig({ DIALECT_FILE: FILE, BATCH_RATE_PER_SEC: '0.1', BATCH_BURST: '5' });
    expect(c.dialect.name).toBe('salesforce-composite');
    expect([c.BATCH_RATE_PER_SEC, c.BATCH_BURST]).toEqual([0.1, 5]);
    expect(c.BATCH_MAX_OPS).toBe(25);
    expect(c.UPSTREAM_URL).toBe('https://login.salesforce.com');
    expect(() => loadConfig({ DIALECT_FILE: FILE, BATCH_RATE_PER_SEC: '1', BATCH_MAX_OPS: '26' })).toThrow(
      /BATCH_MAX_OPS: at most 25/,
    );
  });
});
