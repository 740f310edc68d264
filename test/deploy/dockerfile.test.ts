// infra/docker/Dockerfile, checked statically (no Docker engine here): multi-stage with `pnpm deploy`
// of production dependencies, a Node LTS slim base, a non-root numeric USER, a HEALTHCHECK on the
// admin port with node, exec-form CMD so SIGTERM reaches node, and a .dockerignore that keeps the
// host's node_modules out without hiding what the Dockerfile copies.

import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../apps/proxy/src/process/config.js';
import { execForm, type Instruction, parseDockerfile, type Stage } from './dockerfile.js';
import { isIgnored, parseDockerignore } from './dockerignore.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');
const { stages } = parseDockerfile(read('infra/docker/Dockerfile'));
const runtime = stages.at(-1) as Stage;
const defaults = loadConfig({});
const pkg = JSON.parse(read('package.json')) as { packageManager: string; engines: { node: string } };

const all = (stage: Stage, keyword: string): Instruction[] =>
  stage.instructions.filter((i) => i.keyword === keyword);
const last = (stage: Stage, keyword: string): Instruction | undefined => all(stage, keyword).at(-1);
/** Removes `--flag=value` options from the start of COPY/RUN arguments. */
const options = (args: string) => {
  const flags = new Map<string, string>();
  let rest = args;
  for (let m = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest); m; m = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)) {
    flags.set(m[1] as string, m[2] ?? '');
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
};

describe('infra/docker/Dockerfile', () => {
  it('is multi-stage and ends with the runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(runtime.name).toBe('runtime');
  });

  it('runs on a current Node LTS slim image that satisfies engines.node', () => {
    const m = /^node:(\d+)(?:\.\d+)*-(?:[a-z]+-)?slim(?:@sha256:[0-9a-f]{64})?$/.exec(runtime.from);
    expect(m, `runtime base ${runtime.from}`).not.toBeNull();
    const major = Number(m?.[1]);
    expect(major % 2, 'an even (LTS) Node major').toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
    expect(major).toBeGreaterThanOrEqual(Number(/\d+/.exec(pkg.engines.node)?.[0]));
  });

  it('installs the pnpm version package.json pins', () => {
    const version = pkg.packageManager.replace(/^pnpm@/, '');
    const runs = stages.flatMap((s) => all(s, 'RUN')).map((i) => i.args);
    expect(runs.some((r) => r.includes(`pnpm@${version}`))).toBe(true);
  });

  it('pnpm-deploys the proxy with production dependencies only, and the runtime copies just that', () => {
    const deploys = stages.flatMap((s) =>
      all(s, 'RUN')
        .filter((i) => /\bpnpm\b.*\bdeploy\b/.test(i.args))
        .map((i) => ({ stage: s, args: i.args })),
    );
    expect(deploys).toHaveLength(1);
    const deploy = deploys[0] as { stage: Stage; args: string };
    expect(deploy.args).toMatch(/--filter[= ]@batch-proxy\/proxy\b/);
    expect(deploy.args).toMatch(/--prod\b/);
    // pnpm 10: workspace:* dependencies need injection for deploy, or the legacy implementation.
    expect(deploy.args).toMatch(/--legacy\b|inject-workspace-packages=true/);
    // The target directory: the deploy command's last argument.
    const command = deploy.args.split('&&').find((part) => /\bdeploy\b/.test(part)) ?? '';
    const target = command.trim().split(/\s+/).at(-1);
    expect(target).toBeDefined();

    const copies = all(runtime, 'COPY').map((i) => options(i.args));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy.flags.get('from')).toBe(deploy.stage.name);
    const [source, dest] = (copies[0]?.rest ?? '').split(/\s+/);
    expect(source?.replace(/\/$/, '')).toBe(target);

    // The CMD's script lies inside what was copied.
    const workdir = last(runtime, 'WORKDIR')?.args ?? '/';
    const cmd = execForm(last(runtime, 'CMD')?.args ?? '') ?? [];
    const script = cmd.find((part) => part.endsWith('.js')) ?? '';
    expect(posix.resolve(workdir, script).startsWith(`${dest?.replace(/\/$/, '')}/`)).toBe(true);
  });

  it('needs no frontend image from a registry (no `# syntax=` directive: air-gapped builders)', () => {
    // Parser directives are only recognized before the first instruction or comment line.
    const directives = read('infra/docker/Dockerfile').match(/^#\s*syntax\s*=.*$/gim) ?? [];
    expect(directives).toEqual([]);
  });

  it('keeps the package store in the layers, not in a cache mount', () => {
    // Offline pnpm steps read the store `pnpm fetch` filled. Were it a BuildKit cache mount, a builder
    // that kept the fetch layer but lost the mount (`docker builder prune`, CI layer caches) would
    // run them against an empty store and fail with ERR_PNPM_NO_OFFLINE_TARBALL.
    const mounts = stages.flatMap((s) => all(s, 'RUN')).filter((i) => /--mount=\S*type=cache/.test(i.args));
    expect(mounts.map((i) => `line ${i.line}: ${i.args.slice(0, 60)}`)).toEqual([]);
    const fetches = stages.flatMap((s) => all(s, 'RUN')).filter((i) => /\bpnpm fetch\b/.test(i.args));
    expect(fetches).toHaveLength(1);
  });

  it('ships no source maps or type declarations (node reads neither at run time)', () => {
    const deploy = stages.flatMap((s) => all(s, 'RUN')).find((i) => /\bpnpm\b.*\bdeploy\b/.test(i.args));
    for (const pattern of ['*.map', '*.d.ts', '*.d.mts', '*.d.cts']) {
      expect(deploy?.args, pattern).toContain(`-name '${pattern}'`);
    }
    expect(deploy?.args).toMatch(/-delete\b/);
  });

  it('installs nothing in the runtime stage', () => {
    expect(all(runtime, 'RUN')).toEqual([]);
  });

  it('runs as a non-root user given by number (so runAsNonRoot can verify it)', () => {
    const user = last(runtime, 'USER')?.args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user?.split(':')[0])).toBeGreaterThan(0);
  });

  it('starts node directly in exec form, so SIGTERM reaches the proxy', () => {
    const entrypoint = last(runtime, 'ENTRYPOINT');
    const cmd = last(runtime, 'CMD');
    const argv = [
      ...(entrypoint ? (execForm(entrypoint.args) ?? ['<shell form>']) : []),
      ...(execForm(cmd?.args ?? '') ?? ['<shell form>']),
    ];
    expect(argv).toEqual(['node', 'apps/proxy/dist/main.js']);
    const stop = last(runtime, 'STOPSIGNAL')?.args;
    if (stop !== undefined) expect(stop).toBe('SIGTERM');
  });

  it('checks health on the admin port with node (slim images have no curl)', () => {
    const hc = last(runtime, 'HEALTHCHECK');
    expect(hc).toBeDefined();
    const argv = execForm(hc?.args ?? '');
    expect(argv?.[0]).toBe('node');
    const script = argv?.join(' ') ?? '';
    expect(script).toContain('/healthz');
    expect(script).toMatch(new RegExp(`ADMIN_PORT|${defaults.ADMIN_PORT}`));
    expect(script).not.toMatch(/curl|wget/);
  });

  it('exposes the default data and admin ports', () => {
    const ports = all(runtime, 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map((p) => Number.parseInt(p, 10));
    expect(ports).toEqual(expect.arrayContaining([defaults.PORT, defaults.ADMIN_PORT]));
  });

  it('bakes no secret into the image', () => {
    const named = stages.flatMap((s) => [...all(s, 'ENV'), ...all(s, 'ARG')]).map((i) => i.args);
    for (const args of named) expect(args).not.toMatch(/SECRET|PASSWORD|TOKEN|REDIS_URL/i);
  });
});

describe('.dockerignore', () => {
  const rules = parseDockerignore(read('.dockerignore'));

  it("keeps the host's dependencies, build output and git history out of the context", () => {
    for (const path of [
      'node_modules/x',
      'apps/proxy/node_modules/x',
      'packages/core/dist/index.js',
      '.git/HEAD',
      '.env',
    ]) {
      expect(isIgnored(rules, path), path).toBe(true);
    }
  });

  it('keeps every path the Dockerfile copies from the context', () => {
    const sources = stages
      .flatMap((s) => all(s, 'COPY'))
      .map((i) => options(i.args))
      .filter((c) => !c.flags.has('from'))
      .flatMap((c) => c.rest.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      const path = source === '.' ? 'package.json' : source.replace(/\/$/, '');
      expect(existsSync(`${ROOT}${path}`), `${path} exists`).toBe(true);
      expect(isIgnored(rules, path), `${path} is in the build context`).toBe(false);
    }
    // What the builds read inside those folders.
    for (const path of [
      'apps/proxy/src/process/main.ts',
      'packages/core/src/index.ts',
      'test/demo/demo.ts',
      'test/fake-upstream/index.ts',
    ]) {
      expect(isIgnored(rules, path), path).toBe(false);
    }
  });
});
