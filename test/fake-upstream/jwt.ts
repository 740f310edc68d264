// HS256 app-token verification (and signing, for tests) with node:crypto only.

import { createHmac, timingSafeEqual } from 'node:crypto';

function b64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

/** A JWT part's JSON object, or undefined when it is not one. */
export function parseJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Signs an app-scoped token the way the upstream documents it (`iss` = appId, `tokenType: "app"`). */
export function signAppToken(
  appId: string,
  secret: string,
  opts: { expiresInSec?: number; claims?: Record<string, unknown>; nowSec?: number } = {},
): string {
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(
    JSON.stringify({
      tokenType: 'app',
      iss: appId,
      iat: now,
      exp: now + (opts.expiresInSec ?? 30),
      ...opts.claims,
    }),
  );
  const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}

/** Constant-time string equality (lengths may differ). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Returns undefined when the token is a valid app token for `appId`, else the reason. */
export function verifyAppToken(
  token: string,
  appId: string,
  secret: string,
  nowMs = Date.now(),
): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return 'not a JWT';
  const [h, p, s] = parts as [string, string, string];
  const header = parseJson(h);
  if (header?.alg !== 'HS256') return 'unsupported alg';
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  // base64url decoding is lenient, so also require the canonical encoding.
  if (
    given.length !== expected.length ||
    given.toString('base64url') !== s ||
    !timingSafeEqual(given, expected)
  ) {
    return 'bad signature';
  }
  const claims = parseJson(p);
  if (!claims) return 'bad payload';
  if (claims.tokenType !== 'app') return 'tokenType must be "app"';
  if (claims.iss !== appId) return 'iss does not match the app';
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= nowMs) return 'token expired or without exp';
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > nowMs) return 'token not yet valid';
  return undefined;
}
