// The page and the admin routes that serve it, without a proxy process (the browser test is
// test/e2e/status-page.test.ts).

import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createAdminApp } from '../admin-app.js';
import { statusPage } from './page.js';
import { statusOptions } from './status.fixture.js';
import { createStatus } from './status.js';

describe('admin status routes', () => {
  const admin = (withStatus: boolean) => {
    const status = createStatus(statusOptions(() => apps));
    const apps = [{ appId: '<img src=x onerror=alert(1)>', queued: 2, inflight: 0 }];
    return createAdminApp({
      metrics: undefined,
      notReadyReason: () => undefined,
      ...(withStatus ? { status } : {}),
    });
  };

  it('serves the page with a CSP that allows only its own inline script and style', async () => {
    const res = await admin(true).request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+=*'/);
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toBe(statusPage.html);
    // No external resource: the network may be closed and the page must work offline.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('ships a script that parses and writes data only as text, never as markup', () => {
    const script = /<script>([\s\S]*)<\/script>/.exec(statusPage.html)?.[1] ?? '';
    expect(() => new Script(script)).not.toThrow();
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it('serves status.json uncached, app ids as data', async () => {
    const res = await admin(true).request('/status.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { apps: Array<{ appId: string }> };
    expect(body.apps[0]?.appId).toBe('<img src=x onerror=alert(1)>');
  });

  it('has no status routes when the status is off', async () => {
    expect((await admin(false).request('/')).status).toBe(404);
    expect((await admin(false).request('/status.json')).status).toBe(404);
  });
});
