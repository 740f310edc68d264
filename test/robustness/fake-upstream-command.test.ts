// `npm run fake-upstream [-- --dialect graph|salesforce-composite]` (scripts/fake-upstream.mjs): the README's way to try the
// proxy without an account. Run as `exec` (signals reach the fake), it starts without npx once the
// workspace is installed (no reinstall), answers on FAKE_PORT, and leaves on SIGTERM with exit 0; an
// unknown dialect stops it at once with one line naming the known ones.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type ScriptRun, startScript } from '../harness/script.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'fake-upstream.mjs');
const noNpx = mkdtempSync(join(tmpdir(), 'fake-upstream-path-'));
afterAll(() => rmSync(noNpx, { recursive: true, force: true }));

/** Starts the script with no npx, npm or pnpm on PATH; resolves on the fake's start line. */
async function start(args: string[], announce: RegExp): Promise<ScriptRun & { url: string }> {
  const run = await startScript(
    SCRIPT,
    args,
    { PATH: noNpx, FAKE_PORT: '0', FAKE_HOST: '127.0.0.1' },
    announce,
  );
  return { ...run, url: run.match[1] ?? '' };
}

describe('npm run fake-upstream', () => {
  it('is the script, run in place of npm’s shell', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['fake-upstream']).toBe('exec node scripts/fake-upstream.mjs');
  });

  it('serves the TalkJS fake without reinstalling, logs each call, and stops on SIGTERM', async () => {
    const fake = await start([], /fake upstream on (http:\/\/\S+) /);
    const res = await fetch(`${fake.url}/v1/demo/batch`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_demo_not_a_real_key', 'content-type': 'application/json' },
      body: JSON.stringify([[1, 'GET', '/users/u1']]),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    fake.child.kill('SIGTERM');
    expect(await fake.exited).toBe(0);
    expect(fake.stderr()).not.toContain('installing dependencies');
    expect(fake.stdout()).toMatch(/#\d+ POST \/v1\/demo\/batch → 200 \(1 op\)/);
  }, 60_000);

  it('serves the Graph fake with --dialect graph', async () => {
    const fake = await start(['--dialect', 'graph'], /fake Microsoft Graph upstream on (http:\/\/\S+) /);
    const res = await fetch(`${fake.url}/v1.0/me`, { headers: { authorization: 'Bearer graph_demo_token' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe('alice');
    fake.child.kill('SIGINT');
    expect(await fake.exited).toBe(0);
  }, 60_000);

  it('serves the JSON-RPC fake with --dialect jsonrpc', async () => {
    const fake = await start(['--dialect', 'jsonrpc'], /fake JSON-RPC 2.0 upstream on (http:\/\/\S+) /);
    const res = await fetch(`${fake.url}/rpc`, {
      method: 'POST',
      headers: { authorization: 'Bearer jsonrpc_demo_token', 'content-type': 'application/json' },
      body: '[{"jsonrpc":"2.0","id":7,"method":"echo","params":["hi"]}]',
    });
    expect(await res.json()).toEqual([{ jsonrpc: '2.0', id: 7, result: ['hi'] }]);
    fake.child.kill('SIGINT');
    expect(await fake.exited).toBe(0);
    expect(fake.stdout()).toMatch(/#\d+ POST \/rpc → 200 \(1 entry\)/);
  }, 60_000);

  it('serves the Salesforce fake with --dialect salesforce-composite', async () => {
    const fake = await start(['--dialect', 'salesforce-composite'], /fake Salesforce org on (http:\/\/\S+) /);
    const res = await fetch(`${fake.url}/services/data/v62.0/composite`, {
      method: 'POST',
      headers: { authorization: 'Bearer salesforce_demo_token', 'content-type': 'application/json' },
      body: JSON.stringify({
        compositeRequest: [
          {
            method: 'POST',
            url: '/services/data/v62.0/sobjects/Account',
            referenceId: 'a1',
            body: { Name: 'Acme' },
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('sforce-limit-info')).toBe('api-usage=1/15000');
    await res.arrayBuffer();
    fake.child.kill('SIGTERM');
    expect(await fake.exited).toBe(0);
    expect(fake.stdout()).toMatch(/#\d+ POST \/services\/data\/v62\.0\/composite → 200 \(1 subrequest\)/);
  }, 60_000);

  it('serves the Google fake with --dialect google-batch', async () => {
    const fake = await start(['--dialect', 'google-batch'], /fake Google API upstream on (http:\/\/\S+) /);
    const res = await fetch(`${fake.url}/batch/gmail/v1`, {
      method: 'POST',
      headers: { authorization: 'Bearer google_demo_token', 'content-type': 'multipart/mixed; boundary=b' },
      body: '--b\r\nContent-Type: application/http\r\nContent-ID: <item-0>\r\n\r\nGET /gmail/v1/users/me/x HTTP/1.1\r\n\r\n\r\n--b--\r\n',
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Content-ID: <response-item-0>');
    fake.child.kill('SIGTERM');
    expect(await fake.exited).toBe(0);
    expect(fake.stdout()).toMatch(/#\d+ POST \/batch\/gmail\/v1 → 200 \(1 part\)/);
  }, 60_000);

  it('refuses an unknown dialect with exit 2 and names the known ones', async () => {
    const child = spawn(process.execPath, [SCRIPT, '--dialect=soap'], {
      cwd: ROOT,
      env: { PATH: noNpx },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect({ code, stderr }).toEqual({
      code: 2,
      stderr:
        'fake-upstream: unknown dialect "soap" (known: talkjs, graph, jsonrpc, salesforce-composite, google-batch)\n',
    });
  });
});
