// The dialects the proxy speaks, each in one line of a registry with what the configuration derives
// from it (SPEC §2c, issue #29): its production API (UPSTREAM_URL's default), its default batch
// budget — or none, when no default is safe and the operator must say — and the auth modes it
// allows. Adding a built-in dialect is one entry here.

import { type BatchDialect, googleBatch, graph, jsonrpc, jsonrpcDialect, talkjs } from '@batch-proxy/core';

export const AUTH_MODES = ['passthrough', 'app-token'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The operator's settings a configurable dialect is built with (JSONRPC_WRITE_METHODS). */
export interface DialectSettings {
  readonly writeMethods: readonly string[];
}

export interface DialectEntry {
  /** The dialect as built with no settings: what start-up checks (its maxOps) read. */
  readonly dialect: BatchDialect;
  /** Builds the dialect from the operator's settings; absent: `dialect` as it is. */
  readonly build?: (settings: DialectSettings) => BatchDialect;
  /** Where its calls go when UPSTREAM_URL is unset: the production API. */
  readonly upstreamUrl: string;
  /**
   * BATCH_RATE_PER_SEC and BATCH_BURST when unset; `required`: the upstream's limits vary too much
   * for a default (the operator sets BATCH_RATE_PER_SEC, or PACING=adaptive), and BATCH_BURST
   * defaults to one second of that rate.
   */
  readonly batchBudget: { readonly ratePerSec: number; readonly burst: number } | 'required';
  /** Why a budget is required, for the start-up error. */
  readonly budgetWhy?: string;
  readonly authModes: readonly AuthMode[];
  /** BATCH_MAX_BYTES when unset (a dialect file's maxBytes); absent: 4 MiB. */
  readonly maxBytes?: number;
}

export const DIALECTS = {
  // SPEC §9's defaults: TalkJS grants each app a batch-call budget (1/s, bursts of 500 are fine).
  talkjs: {
    dialect: talkjs,
    upstreamUrl: 'https://api.talkjs.com',
    batchBudget: { ratePerSec: 1, burst: 500 },
    authModes: AUTH_MODES,
  },
  graph: {
    dialect: graph,
    upstreamUrl: 'https://graph.microsoft.com',
    batchBudget: 'required',
    budgetWhy:
      "Graph's limits differ per service and tenant (a $batch of 20 counts as 20 requests); set the $batch calls per second each tenant may make, or PACING=adaptive",
    // App tokens are TalkJS's (an app id and its secret); Graph's bearer tokens are Entra ID's.
    authModes: ['passthrough'],
  },
  // JSON-RPC 2.0 over HTTP (docs/jsonrpc-dialect.md): any endpoint path, batches on that same path.
  jsonrpc: {
    dialect: jsonrpc,
    build: ({ writeMethods }) => jsonrpcDialect({ writeMethods }),
    // No production API: the operator's node or provider is UPSTREAM_URL.
    upstreamUrl: 'http://127.0.0.1:8545',
    batchBudget: 'required',
    budgetWhy:
      'JSON-RPC servers and providers each set their own limits (most count every entry of a batch as a request); set the batch calls per second the endpoint allows, or PACING=adaptive',
    // App tokens are TalkJS's; a JSON-RPC endpoint's credential is its own bearer token or path key.
    authModes: ['passthrough'],
  },
  'google-batch': {
    dialect: googleBatch,
    // Serves every API's `/batch/{api}/{version}` (an API's own host, e.g. gmail.googleapis.com, too).
    upstreamUrl: 'https://www.googleapis.com',
    batchBudget: 'required',
    budgetWhy:
      "Google's quotas differ per API, project and user (a batch of n parts counts as n requests); set the batch calls per second each API may make, or PACING=adaptive",
    // Google's bearer tokens are OAuth 2.0 access tokens; app tokens are TalkJS's.
    authModes: ['passthrough'],
  },
} as const satisfies Record<string, DialectEntry>;

export type DialectName = keyof typeof DIALECTS;
export const DIALECT_NAMES = Object.keys(DIALECTS) as [DialectName, ...DialectName[]];

export function dialectEntry(name: DialectName): DialectEntry {
  return DIALECTS[name];
}
