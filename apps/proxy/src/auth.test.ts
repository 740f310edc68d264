import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyError } from '@batch-proxy/core';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { appTokenAuth, passthroughAuth, signAppToken } from './auth.js';
import { loadAppSecrets } from './secrets.js';

const SECRET = 'sk_test_secret';
const secrets = { get: (appId: string) => (appId === 'app1' ? SECRET : undefined), close: () => {} };

function token(
  claims: Record<string, unknown>,
  secret = SECRET,
  expSec = Math.floor(Date.now() / 1000) + 60,
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(expSec)
    .sign(new TextEncoder().encode(secret));
}

describe('app-token auth', () => {
  const auth = appTokenAuth(secrets);

  it('groups the secret key and every valid app token of one app under one credential', async () => {
    const a = await auth.credentialOf(
      'app1',
      `Bearer ${await token({ iss: 'app1', tokenType: 'app', n: 1 })}`,
    );
    const b = await auth.credentialOf(
      'app1',
      `Bearer ${await token({ iss: 'app1', tokenType: 'app', n: 2 })}`,
    );
    const c = await auth.credentialOf('app1', `Bearer ${SECRET}`);
    expect(typeof a).toBe('string');
    expect(new Set([a, b, c]).size).toBe(1);
  });

  it.each([
    ['no header', undefined],
    ['another app’s issuer', 'iss:app2'],
    ['a user token', 'tokenType:user'],
    ['a wrong signature', 'secret:other'],
    ['an expired token', 'expired'],
    ['garbage', 'garbage'],
  ])('refuses %s with 401', async (_name, kind) => {
    let header: string | undefined;
    if (kind === 'iss:app2') header = `Bearer ${await token({ iss: 'app2', tokenType: 'app' })}`;
    else if (kind === 'tokenType:user') header = `Bearer ${await token({ iss: 'app1', tokenType: 'user' })}`;
    else if (kind === 'secret:other')
      header = `Bearer ${await token({ iss: 'app1', tokenType: 'app' }, 'other')}`;
    else if (kind === 'expired')
      header = `Bearer ${await token({ iss: 'app1', tokenType: 'app' }, SECRET, Math.floor(Date.now() / 1000) - 10)}`;
    else if (kind === 'garbage') header = 'Bearer not.a.token';
    const result = await auth.credentialOf('app1', header);
    expect(result).toBeInstanceOf(ProxyError);
    expect((result as ProxyError).status).toBe(401);
  });

  it('refuses apps it has no secret for', async () => {
    expect(await auth.credentialOf('app9', `Bearer ${SECRET}`)).toBeInstanceOf(ProxyError);
  });

  it('signs upstream calls with a fresh app token the upstream can verify', async () => {
    const header = auth.authorize('app1', 'ignored') ?? '';
    const jwt = header.replace(/^Bearer /, '');
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(SECRET), { issuer: 'app1' });
    expect(payload.tokenType).toBe('app');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(60);
    expect(decodeJwt(signAppToken('app1', SECRET, 1000)).exp).toBe(1060);
  });
});

describe('app-token auth cache', () => {
  it('remembers a verified token only for its own app and its own secret', async () => {
    const keys = new Map([
      ['app1', SECRET],
      ['app2', 'sk_test_other_app'],
    ]);
    const auth = appTokenAuth({ get: (appId) => keys.get(appId), close: () => {} });
    const t = `Bearer ${await token({ iss: 'app1', tokenType: 'app' })}`;
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1');
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1'); // from the cache
    const otherApp = await auth.credentialOf('app2', t);
    expect(otherApp).toBeInstanceOf(ProxyError);
    expect((otherApp as ProxyError).status).toBe(401);
    keys.set('app1', 'sk_test_rotated');
    const rotated = await auth.credentialOf('app1', t);
    expect(rotated).toBeInstanceOf(ProxyError);
    expect((rotated as ProxyError).status).toBe(401);
  });

  it('stops accepting a cached token once it expires', async () => {
    let nowMs = Date.UTC(2030, 0, 1);
    const auth = appTokenAuth(secrets, () => nowMs);
    const expSec = nowMs / 1000 + 30;
    const t = `Bearer ${await token({ iss: 'app1', tokenType: 'app' }, SECRET, expSec)}`;
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1');
    nowMs += 29_000;
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1');
    nowMs += 2_000;
    const expired = await auth.credentialOf('app1', t);
    expect(expired).toBeInstanceOf(ProxyError);
    expect((expired as ProxyError).message).toBe('the token has expired');
  });
});

describe('passthrough auth', () => {
  it('uses the exact Authorization value', async () => {
    expect(await passthroughAuth.credentialOf('a', 'Bearer x')).toBe('Bearer x');
    expect(passthroughAuth.authorize('a', 'Bearer x')).toBe('Bearer x');
    expect(passthroughAuth.authorize('a', '')).toBeUndefined();
  });
});

describe('loadAppSecrets', () => {
  it('loads the file and picks up a replaced file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    const path = join(dir, 'secrets.json');
    writeFileSync(path, JSON.stringify({ app1: 'one' }));
    let onReload: (error?: Error) => void = () => {};
    const reloaded = new Promise<Error | undefined>((resolve) => {
      onReload = resolve;
    });
    const s = loadAppSecrets(path, (error) => onReload(error));
    expect(s.get('app1')).toBe('one');
    // Replace atomically, as a Kubernetes Secret update does.
    writeFileSync(join(dir, 'next.json'), JSON.stringify({ app1: 'two' }));
    renameSync(join(dir, 'next.json'), path);
    expect(await reloaded).toBeUndefined();
    expect(s.get('app1')).toBe('two');
    s.close();
  });

  it('refuses a file that is not an object of strings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    const path = join(dir, 'secrets.json');
    writeFileSync(path, JSON.stringify({ app1: 5 }));
    expect(() => loadAppSecrets(path)).toThrow(/app1/);
  });
});
