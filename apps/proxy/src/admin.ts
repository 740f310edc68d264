// The admin listener's app (SPEC §10): liveness, readiness, Prometheus metrics and the live status page,
// on its own port.

import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import type { ProxyMetrics } from './metrics.js';
import type { ProxyStatus } from './status.js';
import { statusPage } from './status-page.js';

export interface AdminDeps {
  readonly metrics: ProxyMetrics | undefined;
  /** Undefined when ready; otherwise the reason, reported with a 503. */
  readonly notReadyReason: () => string | undefined;
  /** The live status page (GET /) and its data (GET /status.json); undefined = off. */
  readonly status?: ProxyStatus;
}

export function createAdminApp(deps: AdminDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const reason = deps.notReadyReason();
    return reason === undefined ? c.json({ status: 'ready' }) : c.json({ status: 'not ready', reason }, 503);
  });
  app.get('/metrics', (c) => {
    if (!deps.metrics) return c.text('metrics are off\n', 404);
    deps.metrics.exporter.getMetricsRequestHandler(c.env.incoming, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
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
  app.notFound((c) => c.json({ error: { code: 'PROXY_NOT_FOUND', message: 'no such admin path' } }, 404));
  return app;
}
