// The access log: one JSON line per answered call, chosen by ACCESS_LOG (all | errors | sampled).
// Errors and sheds are always logged; successes all, none, or one in ACCESS_LOG_SAMPLE_EVERY. The line
// is built here by hand, not by pino: pino's generic path (redaction, serializers, a property walk)
// was a tenth of the proxy's CPU per call (docs/benchmarks.md), and these fields are known and carry
// no credential. It keeps pino's shape (level, time, pid, hostname, msg) so one parser reads both.

import { hostname } from 'node:os';
import type { Lane } from '@batch-proxy/core';
import type { AnswerSource, RequestKind } from './recorded.js';
import type { PassThroughWhy } from './route.js';

export const ACCESS_LOG_POLICIES = ['all', 'errors', 'sampled'] as const;
export type AccessLogPolicy = (typeof ACCESS_LOG_POLICIES)[number];

/** What the edge knows about one answered call. */
export interface AccessEntry {
  readonly requestId: string;
  /** undefined when the path names no app. */
  readonly appId: string | undefined;
  readonly method: string;
  /** The raw request target; logged as its route template. */
  readonly url: string;
  readonly kind: RequestKind;
  readonly status: number;
  readonly source: AnswerSource;
  /** The proxy's error code, when the proxy made an error answer. */
  readonly code: string | undefined;
  readonly why: PassThroughWhy | undefined;
  readonly ms: number;
  readonly timing:
    | {
        readonly queueMs: number;
        readonly upstreamMs: number;
        readonly batchSize: number;
        readonly lane: Lane;
        readonly callId: number;
      }
    | undefined;
}

export interface AccessLogOptions {
  readonly policy: AccessLogPolicy;
  /** `sampled`: one success in this many is logged (1 logs every one). */
  readonly sampleEvery: number;
  /** Whether `info` lines are written at all (LOG_LEVEL). */
  readonly enabled: boolean;
  /** Takes one complete line, newline included (a buffered destination: never a sync write per call). */
  readonly write: (line: string) => void;
  /** Epoch milliseconds, for the `time` field. */
  readonly now?: () => number;
}

export interface AccessLog {
  record(entry: AccessEntry): void;
}

/** An error or a shed: always logged, whatever the policy. */
export function isError(entry: Pick<AccessEntry, 'status' | 'code'>): boolean {
  return entry.status >= 400 || entry.code !== undefined;
}

export function createAccessLog(options: AccessLogOptions): AccessLog {
  if (!options.enabled) return { record: () => {} };
  const { policy, write } = options;
  const every = Math.max(1, Math.floor(options.sampleEvery));
  const now = options.now ?? Date.now;
  // pino's base fields, computed once.
  const head = `{"level":30,"time":`;
  const base = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`;
  // A counter, not a random draw: one in `every` exactly, and a test can say which.
  let successes = 0;
  return {
    record(entry) {
      if (!isError(entry)) {
        if (policy === 'errors') return;
        if (policy === 'sampled' && successes++ % every !== 0) return;
      }
      write(`${head}${now()}${base}${fields(entry)},"msg":"request"}\n`);
    },
  };
}

/** The entry's fields as JSON members (leading comma): caller-supplied strings escaped. */
function fields(e: AccessEntry): string {
  let s = `,"requestId":${JSON.stringify(e.requestId)},"appId":${e.appId === undefined ? 'null' : JSON.stringify(e.appId)},"method":${JSON.stringify(e.method)},"route":${JSON.stringify(routeTemplate(e.url))},"kind":"${e.kind}","status":${e.status},"source":"${e.source}"`;
  if (e.code !== undefined) s += `,"code":"${e.code}"`;
  // The header's name only: its value may be a credential (a Cookie).
  if (e.why) {
    s += `,"passReason":"${e.why.reason}"`;
    if (e.why.header) s += `,"passHeader":${JSON.stringify(e.why.header)}`;
  }
  s += `,"ms":${round(e.ms)}`;
  const t = e.timing;
  if (t) {
    s += `,"queueMs":${round(t.queueMs)},"upstreamMs":${round(t.upstreamMs)},"batchSize":${t.batchSize},"lane":"${t.lane}","batchId":${t.callId}`;
  }
  return s;
}

/**
 * The route template of a request for logs: ids replaced, query dropped, so lines group by route
 * and carry no resource ids (`/v1/:appId/conversations/:id/messages`).
 */
export function routeTemplate(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const segments = path.split('/');
  if (segments[1] !== 'v1' || segments.length < 3) return segments.length > 8 ? '/…' : path.slice(0, 200);
  let out = '/v1/:appId';
  for (let i = 3; i < segments.length && i < 12; i++)
    out += i % 2 === 0 ? '/:id' : `/${(segments[i] ?? '').slice(0, 40)}`;
  return out;
}

export function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
