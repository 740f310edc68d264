// One way out for every upstream call, a batch or a single op: build the request through the dialect,
// trace it, send it with the group's credential, time it. Never throws: a transport failure is the
// typed error it maps to.

import type { BatchDialect, BatchPlan, UpstreamRequest } from '../dialect/dialect.js';
import { ProxyError } from '../errors.js';
import { endUpstreamSpan, startUpstreamSpan } from '../telemetry/tracing.js';
import type { BufferedResponse } from '../upstream/client.js';
import type { Clock } from './clock.js';
import type { Lane, PendingOp } from './op.js';

export interface UpstreamTransport {
  call(
    request: UpstreamRequest,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<BufferedResponse>;
}

export interface DispatchDeps {
  readonly dialect: BatchDialect;
  readonly upstream: UpstreamTransport;
  readonly clock: Clock;
  readonly authorize: (appId: string, credential: string) => string | undefined;
  /** Ends every call still out (the end of a shutdown grace period). */
  readonly signal: AbortSignal;
}

export interface Sent {
  readonly result: BufferedResponse | ProxyError;
  readonly sentAt: number;
  readonly answeredAt: number;
}

export async function dispatch(
  deps: DispatchDeps,
  appId: string,
  lane: Lane,
  credential: string,
  ops: readonly PendingOp[],
  plan: BatchPlan = 'parallel',
): Promise<Sent> {
  const first = ops[0];
  if (!first) throw new TypeError('dispatch: no ops');
  const built =
    lane === 'batch'
      ? deps.dialect.batchRequest(
          appId,
          ops.map((op) => op.op),
          plan,
        )
      : deps.dialect.singleRequest(appId, first.op);
  const traced = startUpstreamSpan(
    appId,
    lane,
    lane === 'batch' ? 'POST' : first.op.method,
    ops.flatMap((op) => op.waiters.map((w) => w.spanContext)),
  );
  const request = { ...built, headers: { ...built.headers, ...traced.headers } };
  const sentAt = deps.clock.now();
  let result: BufferedResponse | ProxyError;
  try {
    result = await deps.upstream.call(request, deps.authorize(appId, credential), deps.signal);
    endUpstreamSpan(traced.span, result.status);
  } catch (error) {
    endUpstreamSpan(traced.span, error instanceof Error ? error : new Error(String(error)));
    result =
      error instanceof ProxyError
        ? error
        : new ProxyError('PROXY_UPSTREAM_UNAVAILABLE', 'the upstream call failed', { cause: error });
  }
  return { result, sentAt, answeredAt: deps.clock.now() };
}
