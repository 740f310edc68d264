// Calls that bypass the queue (SPEC §3): pass-through calls and the client's own batch calls wait for a
// token of their app's bucket, then stream to the upstream and back, with the caller's trace joined.

import type { IncomingMessage } from 'node:http';
import { ProxyError, type Scheduler, type UpstreamClient } from '@batch-proxy/core';
import { context, propagation, trace } from '@opentelemetry/api';
import { type BodyRelay, bodyTooLarge, readBody, relayBody } from './body.js';
import type { Call } from './call-record.js';
import { ignoredTiming } from './caller-hints.js';
import { passThrough } from './passthrough.js';
import { passthroughTiming, refuse } from './respond.js';

/** What these calls need of the data listener's dependencies (app.ts's AppDeps has them). */
export interface ForwardDeps {
  readonly scheduler: Pick<Scheduler, 'admit'>;
  readonly upstream: UpstreamClient;
  readonly bodyLimitBytes: number;
}

/** A call that bypasses the queue waits for a token of its bucket, and gives it back when answered. */
export async function admitted(
  deps: ForwardDeps,
  appId: string,
  bucket: 'batch' | 'rest',
  call: Call,
  send: () => Promise<Response>,
  credential?: string,
): Promise<Response> {
  const release = await deps.scheduler.admit(appId, bucket, call.gone.signal, credential, call.maxWaitMs);
  if (release instanceof ProxyError) {
    call.kind = 'rejected';
    return refuse(call, release);
  }
  try {
    return await send();
  } finally {
    release();
  }
}

/** Streams one call to the upstream (its body unread, or already read) and its answer back. */
export async function forward(
  deps: ForwardDeps,
  incoming: IncomingMessage,
  pathAndQuery: string,
  body: Buffer | undefined,
  call: Call,
): Promise<Response> {
  const { requestId } = call;
  // The upstream joins the caller's trace as a child of this proxy's server span.
  const traceHeaders: Record<string, string> = {};
  if (call.span) propagation.inject(trace.setSpan(context.active(), call.span), traceHeaders);
  const hasBody =
    body !== undefined ||
    incoming.headers['content-length'] !== undefined ||
    incoming.headers['transfer-encoding'] !== undefined;
  let relay: BodyRelay | undefined;
  if (body === undefined && hasBody) {
    // BODY_LIMIT_BYTES holds for streamed bodies too: a declared size over it is refused before
    // anything is sent, an undeclared (chunked) one as soon as it passes the limit.
    const declared = Number(incoming.headers['content-length']);
    if (Number.isFinite(declared) && declared > deps.bodyLimitBytes) {
      const refused = await readBody(incoming, deps.bodyLimitBytes);
      if (refused instanceof ProxyError) return refuse(call, refused);
    }
    relay = relayBody(incoming, deps.bodyLimitBytes);
  }
  try {
    const response = await passThrough(deps.upstream, {
      method: call.method,
      pathAndQuery,
      headers: { ...incoming.headers, ...traceHeaders },
      body: body ?? relay?.stream,
      signal: call.gone.signal,
    });
    if (!response.headers.has('x-request-id')) response.headers.set('x-request-id', requestId);
    // Why this call was not batched, for the caller (`passthrough;desc="header"`).
    if (call.why) response.headers.append('server-timing', passthroughTiming(call.why));
    if (call.ignored) response.headers.append('server-timing', ignoredTiming(call.ignored));
    call.source = 'upstream';
    return response;
  } catch (error) {
    if (relay?.tooLarge()) return refuse(call, bodyTooLarge(deps.bodyLimitBytes));
    if (error instanceof ProxyError) return refuse(call, error);
    throw error;
  }
}
