// nginx as a plain keep-alive reverse proxy in front of the fake upstream: the baseline of the
// capacity scenario. Runs from a throw-away prefix directory with a minimal nginx.conf.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { sleep } from './load.js';

export interface Nginx {
  url: string;
  /** The master process; its workers are its children. */
  pid: number;
  workers: number;
  conf: string;
  stop(): Promise<void>;
}

export function nginxConf(opts: { port: number; upstream: URL; prefix: string; workers: number }): string {
  const p = opts.prefix;
  return `worker_processes ${opts.workers};
pid ${p}/nginx.pid;
error_log ${p}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${p}/body;
  proxy_temp_path ${p}/proxy;
  fastcgi_temp_path ${p}/fastcgi;
  uwsgi_temp_path ${p}/uwsgi;
  scgi_temp_path ${p}/scgi;
  keepalive_requests 1000000;
  upstream fake {
    server ${opts.upstream.host};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${opts.port};
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export async function startNginx(upstreamUrl: string, workers = 1): Promise<Nginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'bench-nginx-'));
  const port = await freePort();
  const conf = nginxConf({ port, upstream: new URL(upstreamUrl), prefix, workers });
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(
    'nginx',
    ['-p', prefix, '-c', 'nginx.conf', '-e', join(prefix, 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}`);
    const up = await fetch(`${url}/`, { signal: AbortSignal.timeout(500) }).then(
      async (res) => {
        await res.arrayBuffer();
        return true;
      },
      () => false,
    );
    if (up) break;
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx not answering on ${url}: ${stderr}`);
    }
    await sleep(50);
  }
  return {
    url,
    pid: child.pid ?? -1,
    workers,
    conf,
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null) {
        // SIGQUIT: graceful; SIGTERM: fast shutdown (what we want).
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
