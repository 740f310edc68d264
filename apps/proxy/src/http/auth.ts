// Credentials (SPEC §4): which calls may share a batch, and what Authorization the batch carries.
//  - passthrough: the credential is the caller's exact Authorization value, sent on as it is.
//  - app-token: the proxy holds each app's secret key, verifies every caller's token (the secret key
//    itself, or an app JWT: HS256, iss = appId, tokenType "app", unexpired) and signs each upstream
//    call with a fresh short-lived token of its own, so callers of one app batch together.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ProxyError } from '@batch-proxy/core';
import type * as Jose from 'jose';
import type { AppSecrets } from './secrets.js';

export interface Auth {
  /**
   * The credential a call is grouped under, or the 401 to answer: at once when nothing needs to be
   * verified (pass-through), a promise when a token must be (every batched call would otherwise wait
   * a turn of the microtask queue for nothing).
   */
  credentialOf(
    appId: string,
    authorization: string | undefined,
  ): string | ProxyError | Promise<string | ProxyError>;
  /** The Authorization header for an upstream call made for `credential`. */
  authorize(appId: string, credential: string): string | undefined;
}

export const passthroughAuth: Auth = {
  credentialOf: (_appId, authorization) => authorization ?? '',
  authorize: (_appId, credential) => (credential === '' ? undefined : credential),
};

/** Lifetime of the tokens the proxy signs: long enough for one upstream call and its retries. */
const SIGNED_TOKEN_TTL_SEC = 60;
/** Verified caller tokens are remembered (until they expire) so a hot token is verified once. */
const VERIFIED_CACHE_MAX = 10_000;

/** JWT verification is loaded on the first token that is not a secret key: other modes never load it. */
let jose: Promise<typeof Jose> | undefined;
const loadJose = () => {
  jose ??= import('jose');
  return jose;
};

export function appTokenAuth(secrets: AppSecrets, now: () => number = Date.now): Auth {
  const verified = new Map<string, { appId: string; expMs: number; secret: string }>();
  const unauthorized = (message: string) => new ProxyError('PROXY_UNAUTHORIZED', message);

  return {
    async credentialOf(appId, authorization) {
      const secret = secrets.get(appId);
      if (secret === undefined) return unauthorized(`no secret key is configured for app ${appId}`);
      const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
      const token = match?.[1];
      if (!token) return unauthorized('a Bearer token is required');
      const credential = `app-token:${appId}`;
      if (sameSecret(token, secret)) return credential;

      const cached = verified.get(token);
      if (cached && cached.appId === appId && cached.secret === secret && cached.expMs > now())
        return credential;
      const { errors: joseErrors, jwtVerify } = await loadJose();
      try {
        const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
          algorithms: ['HS256'],
          issuer: appId,
          requiredClaims: ['exp'],
          currentDate: new Date(now()),
        });
        if (payload.tokenType !== 'app') return unauthorized('the token is not an app token');
        if (verified.size >= VERIFIED_CACHE_MAX) verified.clear();
        verified.set(token, { appId, expMs: (payload.exp ?? 0) * 1000, secret });
        return credential;
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) return unauthorized('the token has expired');
        return unauthorized('the token is not valid for this app');
      }
    },

    authorize(appId) {
      const secret = secrets.get(appId);
      if (secret === undefined) return undefined; // removed since the call was accepted: let the upstream refuse
      return `Bearer ${signAppToken(appId, secret, Math.floor(now() / 1000))}`;
    },
  };
}

/**
 * Whether a presented token is the app's secret key, in time that does not depend on where they
 * differ (both hashed first, so lengths do not leak either).
 */
export function sameSecret(presented: string, secret: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(secret));
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');
const HEADER = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

/** An app-scoped HS256 JWT, synchronously (it is made once per upstream call). */
export function signAppToken(appId: string, secret: string, nowSec: number): string {
  const claims = base64url(
    JSON.stringify({ tokenType: 'app', iss: appId, iat: nowSec, exp: nowSec + SIGNED_TOKEN_TTL_SEC }),
  );
  const signature = createHmac('sha256', secret).update(`${HEADER}.${claims}`).digest('base64url');
  return `${HEADER}.${claims}.${signature}`;
}
