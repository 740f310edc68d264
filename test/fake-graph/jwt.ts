// Bearer JWTs for the fake Graph, like Entra ID access tokens as far as the proxy can see them: a
// header, the claims Graph callers carry (`tid`, `oid`, `appid`/`azp`), a signature. The fake signs
// with HS256 and one key (Entra uses RS256 and published keys; what matters here is that only the
// issuer can make a token the service accepts). A token with the right claims and a wrong signature —
// a forged token naming someone else's `oid` — is refused with 401, as Graph refuses it.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseJson } from '../fake-upstream/jwt.js';

/** The key the fake signs and verifies with unless its options name another. */
export const DEFAULT_JWT_KEY = 'fake-graph-issuer-key';

export interface GraphClaims {
  /** The tenant: one of the fake's tenant names. */
  tid: string;
  /** The user (`/me`); absent for an app-only token. */
  oid?: string;
  appid?: string;
  azp?: string;
  /** Seconds since the epoch; absent = never expires. */
  exp?: number;
  [claim: string]: unknown;
}

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** A token the fake accepts when `key` is its key. */
export function signGraphToken(claims: GraphClaims, key: string = DEFAULT_JWT_KEY): string {
  const head = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

/** The same claims signed with a key the fake does not know: what an attacker can make. */
export function forgeGraphToken(claims: GraphClaims): string {
  return signGraphToken(claims, `not-${DEFAULT_JWT_KEY}`);
}

export type TokenCheck =
  | { kind: 'valid'; claims: GraphClaims }
  /** Looks like a JWT with Graph claims, but the signature (or expiry) fails: the claims are a lie. */
  | { kind: 'forged'; claims: Partial<GraphClaims> }
  | { kind: 'not-jwt' };

const claimsOf = parseJson;

/** Reads and verifies a bearer token. */
export function checkGraphToken(token: string, key: string, nowMs = Date.now()): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { kind: 'not-jwt' };
  const [h, p, s] = parts as [string, string, string];
  const claims = claimsOf(p);
  if (!claims || !claimsOf(h)) return { kind: 'not-jwt' };
  const expected = createHmac('sha256', key).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  const signed =
    claimsOf(h)?.alg === 'HS256' &&
    given.length === expected.length &&
    given.toString('base64url') === s &&
    timingSafeEqual(given, expected);
  const fresh = typeof claims.exp !== 'number' || claims.exp * 1000 > nowMs;
  if (!signed || !fresh || typeof claims.tid !== 'string') return { kind: 'forged', claims };
  if (claims.oid !== undefined && typeof claims.oid !== 'string') return { kind: 'forged', claims };
  return { kind: 'valid', claims: claims as GraphClaims };
}
