import { describe, expect, it } from 'vitest';
import { VERSION } from '../version.js';
import { loadConfig } from './config.js';
import { startLine, upstreamWarning } from './startup.js';

const at = { port: 8080, adminPort: 9464, upstream: 'http://127.0.0.1:9', limiterMode: 'memory' } as const;

describe('the start line', () => {
  it('names version, auth, limiter, limits, window, ports and the status-page URL', () => {
    const config = loadConfig({
      UPSTREAM_URL: 'http://127.0.0.1:9',
      AUTH_MODE: 'app-token',
      APP_SECRETS_FILE: '/run/secrets.json',
      REDIS_URL: 'redis://r:6379',
      REST_RATE_PER_SEC: '5',
      BATCH_WINDOW_MS: '25',
      BATCH_DROPPABLE_HEADERS: 'X-Tenant',
    });
    expect(startLine(config, { ...at, limiterMode: 'shared' })).toEqual({
      version: VERSION,
      port: 8080,
      adminPort: 9464,
      statusPage: 'http://localhost:9464/',
      upstream: 'http://127.0.0.1:9',
      auth: 'app-token',
      limiter: 'redis',
      limiterMode: 'shared',
      windowMs: 25,
      maxOps: 10,
      limits: {
        batch: { ratePerSec: 1, burst: 500 },
        rest: { ratePerSec: 5, burst: 5 },
        queueMaxOps: 10_000,
        maxWaitMs: 30_000,
      },
      droppableHeaders: ['x-tenant'],
    });
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('shows the admin host the status page is bound to', () => {
    expect(startLine(loadConfig({ ADMIN_HOST: '127.0.0.1' }), at).statusPage).toBe('http://127.0.0.1:9464/');
    expect(startLine(loadConfig({ HOST: '::1' }), at).statusPage).toBe('http://[::1]:9464/');
  });

  it('warns when UPSTREAM_URL was defaulted to the production API, and only then', () => {
    expect(upstreamWarning(loadConfig({}))).toMatch(/UPSTREAM_URL is not set: .*https:\/\/api\.talkjs\.com/);
    expect(upstreamWarning(loadConfig({ UPSTREAM_URL: 'https://api.talkjs.com' }))).toBeUndefined();
  });
});
