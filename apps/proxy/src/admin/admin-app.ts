// The admin listener's app (SPEC §10): liveness, readiness, Prometheus metrics and the live status page,
// on its own port.

import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { ProxyMetrics } from './metrics/metrics.js';
import { statusPage } from './status/page.js';
import type { ProxyStatus } from './status/status.js';

export interface AdminDeps {
  readonly metrics: ProxyMetrics | undefined;
  /** Undefined when ready; otherwise the reason, reported with a 503. */
  readonly notReadyReason: () => string | undefined;
  /** The live status page (GET /) and its data (GET /status.json); undefined = off. */
  readonly status?: ProxyStatus;
  /** Where a failed admin request is reported. */
  readonly logger?: Logger;
}

export function createAdminApp(deps: AdminDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const reason = deps.notReadyReason();
    return reason === undefined ? c.json({ status: 'ready' }) : c.json({ status: 'not ready', reason }, 503);
  });
  app.get('/metrics', async (c) => {
    if (!deps.metrics) return c.text('metrics are off\n', 404);
    c.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return c.body(await deps.metrics.text());
  });
  const status = deps.status;
  if (status) {
    app.get('/', (c) => {
      c.header('content-security-policy', statusPage.csp);
      c.header('x-content-type-options', 'nosniff');
      c.header('cache-control', 'no-store');
      return c.html(statusPage.html);
    });
    app.get('/status.json', async (c) => {
      c.header('cache-control', 'no-store');
      return c.json(await status.json());
    });
  }
  app.onError((error, c) => {
    deps.logger?.error({ err: error, path: c.req.path }, 'admin request failed');
    return c.json({ error: { code: 'PROXY_INTERNAL', message: 'internal error' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'PROXY_NOT_FOUND', message: 'no such admin path' } }, 404));
  return app;
}
