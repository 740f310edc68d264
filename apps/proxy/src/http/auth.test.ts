import { ProxyError } from '@batch-proxy/core';
import { decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { appTokenAuth, passthroughAuth, signAppToken } from './auth.js';

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

  it('does not take a token of one app for another that shares its secret key', async () => {
    const auth = appTokenAuth({ get: () => SECRET, close: () => {} });
    const t = `Bearer ${await token({ iss: 'app1', tokenType: 'app' })}`;
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1');
    const other = await auth.credentialOf('app2', t);
    expect(other).toBeInstanceOf(ProxyError);
    expect((other as ProxyError).message).toBe('the token is not valid for this app');
  });

  it('stops accepting a cached token once it expires', async () => {
    let nowMs = Date.UTC(2030, 0, 1);
    const auth = appTokenAuth(secrets, () => nowMs);
    const expSec = nowMs / 1000 + 30;
    const t = `Bearer ${await token({ iss: 'app1', tokenType: 'app' }, SECRET, expSec)}`;
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1');
    nowMs += 29_999;
    expect(await auth.credentialOf('app1', t)).toBe('app-token:app1');
    nowMs += 1; // exactly at `exp`: expired, also for the cache
    expect(((await auth.credentialOf('app1', t)) as ProxyError).message).toBe('the token has expired');
    nowMs += 2_000;
    const expired = await auth.credentialOf('app1', t);
    expect(expired).toBeInstanceOf(ProxyError);
    expect((expired as ProxyError).message).toBe('the token has expired');
  });
});

describe('app-token auth header and signing', () => {
  it('takes the token from a Bearer header in any case, and nothing else', async () => {
    const auth = appTokenAuth(secrets);
    expect(await auth.credentialOf('app1', `bearer ${SECRET}`)).toBe('app-token:app1');
    expect(await auth.credentialOf('app1', `Bearer   ${SECRET}`)).toBe('app-token:app1');
    for (const header of [
      SECRET,
      `Basic ${SECRET}`,
      `xBearer ${SECRET}`,
      `Bearer ${SECRET} extra`,
      `Bearer ${SECRET}x`,
      'Bearer ',
      '',
    ]) {
      const result = await auth.credentialOf('app1', header);
      expect(result, header).toBeInstanceOf(ProxyError);
      expect((result as ProxyError).message, header).toMatch(/Bearer token is required|not valid/);
    }
    expect(((await auth.credentialOf('app1', undefined)) as ProxyError).message).toBe(
      'a Bearer token is required',
    );
  });

  it('says why it refuses', async () => {
    const auth = appTokenAuth(secrets);
    const why = async (appId: string, header: string | undefined) =>
      ((await auth.credentialOf(appId, header)) as ProxyError).message;
    expect(await why('app9', `Bearer ${SECRET}`)).toBe('no secret key is configured for app app9');
    expect(await why('app1', `Bearer ${await token({ iss: 'app1', tokenType: 'user' })}`)).toBe(
      'the token is not an app token',
    );
    expect(await why('app1', `Bearer ${await token({ iss: 'app1', tokenType: 'app' }, 'other')}`)).toBe(
      'the token is not valid for this app',
    );
    const expSec = Math.floor(Date.now() / 1000) - 10;
    expect(
      await why('app1', `Bearer ${await token({ iss: 'app1', tokenType: 'app' }, SECRET, expSec)}`),
    ).toBe('the token has expired');
    // A token without an expiry is refused: the proxy never caches a token forever.
    const forever = await new SignJWT({ iss: 'app1', tokenType: 'app' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    expect(await why('app1', `Bearer ${forever}`)).toBe('the token is not valid for this app');
  });

  it('signs with the clock it is given, and not for an app it has no key for', () => {
    const nowMs = Date.UTC(2030, 0, 1, 0, 0, 0, 999);
    const auth = appTokenAuth(secrets, () => nowMs);
    const jwt = (auth.authorize('app1', 'ignored') ?? '').replace(/^Bearer /, '');
    expect(decodeJwt(jwt)).toEqual({
      tokenType: 'app',
      iss: 'app1',
      iat: Math.floor(nowMs / 1000),
      exp: Math.floor(nowMs / 1000) + 60,
    });
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(jwt).toBe(signAppToken('app1', SECRET, Math.floor(nowMs / 1000)));
    expect(auth.authorize('app9', 'ignored')).toBeUndefined();
  });
});

describe('passthrough auth', () => {
  it('uses the exact Authorization value', async () => {
    // At once, not a promise: nothing to verify, so a batched call does not wait a microtask turn.
    expect(passthroughAuth.credentialOf('a', 'Bearer x')).toBe('Bearer x');
    expect(passthroughAuth.credentialOf('a', undefined)).toBe('');
    // Not folded: case and inner spaces are the credential's (auth.grouping.test.ts: never one batch).
    for (const value of ['Bearer Tok-A', 'bearer tok-a', 'Bearer  Tok-A', 'Bearer\tTok-A'])
      expect(passthroughAuth.credentialOf('a', value)).toBe(value);
    expect(passthroughAuth.authorize('a', 'Bearer x')).toBe('Bearer x');
    expect(passthroughAuth.authorize('a', '')).toBeUndefined();
  });
});
