import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './ports.js';
import { startProxyProcess } from './process.js';

// A stand-in for the built proxy: serves /readyz on ADMIN_PORT once READY_AFTER_MS has passed,
// echoes its environment on PORT, and exits 0 on SIGTERM.
const STUB = `
import { createServer } from 'node:http';
const started = Date.now();
const readyAfter = Number(process.env.READY_AFTER_MS ?? 0);
if (process.env.CRASH) { console.error('boom: bad config'); process.exit(3); }
// Another process took the port first, the first TAKEN_ONCE starts (the count kept in that file).
if (process.env.TAKEN_ONCE) {
  const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
  const n = existsSync(process.env.TAKEN_ONCE) ? Number(readFileSync(process.env.TAKEN_ONCE, 'utf8')) : 0;
  writeFileSync(process.env.TAKEN_ONCE, String(n + 1));
  if (n < Number(process.env.TAKEN_TIMES ?? 1)) { console.error('Error: listen EADDRINUSE: address already in use'); process.exit(1); }
}
const data = createServer((req, res) => res.end(JSON.stringify({ HOST: process.env.HOST, PORT: process.env.PORT, HOME_SET: 'REDIS_URL' in process.env })));
const admin = createServer((req, res) => { res.statusCode = Date.now() - started >= readyAfter ? 200 : 503; res.end(); });
data.listen(Number(process.env.PORT), process.env.HOST);
admin.listen(Number(process.env.ADMIN_PORT), process.env.HOST);
console.log('stub listening');
process.on('SIGTERM', () => { console.log('draining'); data.close(); admin.close(); process.exit(0); });
`;

const dir = mkdtempSync(join(tmpdir(), 'proxy-stub-'));

function stubEntry(): string {
  const file = join(dir, 'main.mjs');
  writeFileSync(file, STUB);
  return file;
}

describe('startProxyProcess', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts the entry on free ports, waits for /readyz and stops with its exit code', async () => {
    process.env.REDIS_URL = 'redis://leaked:1';
    const proxy = await startProxyProcess({ READY_AFTER_MS: '200' }, { entry: stubEntry() }).finally(() => {
      delete process.env.REDIS_URL;
    });
    const body = (await (await fetch(proxy.url)).json()) as { PORT: string };
    expect(body).toMatchObject({ HOST: '127.0.0.1', HOME_SET: false });
    expect(proxy.url).toBe(`http://127.0.0.1:${body.PORT}`);
    expect(proxy.adminUrl).not.toBe(proxy.url);
    expect(await proxy.stop()).toBe(0);
    expect(proxy.logs()).toContain('stub listening');
    expect(proxy.logs()).toContain('draining');
    expect(await proxy.stop()).toBe(0);
  });

  it('fails with the captured logs when the process exits before it is ready', async () => {
    await expect(startProxyProcess({ CRASH: '1' }, { entry: stubEntry() })).rejects.toThrow(
      /exited with code 3[\s\S]*boom: bad config/,
    );
  });

  it('starts again on new ports when a port it picked was taken before the child bound it', async () => {
    const count = join(dir, 'taken-once');
    const proxy = await startProxyProcess({ TAKEN_ONCE: count }, { entry: stubEntry() });
    expect(await proxy.stop()).toBe(0);
    expect(readFileSync(count, 'utf8')).toBe('2');
  });

  it('gives up after three starts, and does not retry ports the caller chose', async () => {
    const thrice = join(dir, 'taken-thrice');
    await expect(
      startProxyProcess({ TAKEN_ONCE: thrice, TAKEN_TIMES: '5' }, { entry: stubEntry() }),
    ).rejects.toThrow(/exited with code 1[\s\S]*EADDRINUSE/);
    expect(readFileSync(thrice, 'utf8')).toBe('3');
    const chosen = join(dir, 'taken-chosen');
    await expect(
      startProxyProcess(
        { TAKEN_ONCE: chosen, PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) },
        { entry: stubEntry() },
      ),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(readFileSync(chosen, 'utf8')).toBe('1');
  });

  it('fails when /readyz does not answer 200 in time', async () => {
    await expect(
      startProxyProcess({ READY_AFTER_MS: '60000' }, { entry: stubEntry(), readyTimeoutMs: 1500 }),
    ).rejects.toThrow(/not ready .*status 503/);
  });
});
