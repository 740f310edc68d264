import { describe, expect, it } from 'vitest';
import { appTokenAuth, sameSecret } from './auth.js';

describe('sameSecret', () => {
  it('is equality of the two strings, whatever their lengths', () => {
    expect(sameSecret('sk_abc', 'sk_abc')).toBe(true);
    expect(sameSecret('sk_abd', 'sk_abc')).toBe(false);
    expect(sameSecret('sk_ab', 'sk_abc')).toBe(false);
    expect(sameSecret('', 'sk_abc')).toBe(false);
    expect(sameSecret('sk_abcé', 'sk_abcé')).toBe(true);
  });
});

describe('appTokenAuth refusals', () => {
  const secrets = { get: (appId: string) => (appId === 'app1' ? 'sk_app1' : undefined), close: () => {} };
  const auth = appTokenAuth(secrets, () => 1_000_000);

  it('refuses a missing, malformed or near-miss key, and an unknown app, with PROXY_UNAUTHORIZED', async () => {
    for (const [appId, authorization] of [
      ['app1', undefined],
      ['app1', 'sk_app1'],
      ['app1', 'Bearer sk_app'],
      ['app1', 'Bearer sk_app1x'],
      ['app1', 'Bearer  '],
      ['app2', 'Bearer sk_app1'],
    ] as const) {
      const result = await auth.credentialOf(appId, authorization);
      expect(result, `${appId} ${authorization}`).toMatchObject({ code: 'PROXY_UNAUTHORIZED', status: 401 });
    }
    expect(await auth.credentialOf('app1', 'Bearer sk_app1')).toBe('app-token:app1');
  });
});
