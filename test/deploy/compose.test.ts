// infra/compose.yaml, checked statically (no Docker engine here): the fleet it describes is wired to
// things that exist — Dockerfile targets, demo entry points, config variables — and runs the proxies
// as production would (read-only, no capabilities, room to drain, ports on loopback only).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../apps/proxy/src/process/config.js';
import { parseDockerfile } from './dockerfile.js';
import { configSchemaKeys } from './invariants.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

interface Service {
  build?: { context: string; dockerfile: string; target: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  read_only?: boolean;
  cap_drop?: string[];
  stop_grace_period?: string;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(read('infra/compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const proxies = services.filter(([, s]) => s.build?.target === 'runtime');
const stageNames = parseDockerfile(read('infra/docker/Dockerfile')).stages.map((s) => s.name);

describe('infra/compose.yaml', () => {
  it('runs two proxy replicas, Redis, the fake upstream and a load client', () => {
    expect(proxies.map(([name]) => name)).toHaveLength(2);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['redis', 'upstream', 'load']));
  });

  it('builds only Dockerfile targets that exist, from the repository root', () => {
    for (const [name, s] of services.filter(([, s]) => s.build)) {
      expect(s.build?.context, name).toBe('..');
      expect(s.build?.dockerfile, name).toBe('infra/docker/Dockerfile');
      expect(stageNames, name).toContain(s.build?.target);
    }
  });

  it('starts demo entry points that test/demo/tsconfig.json compiles', () => {
    const files = (JSON.parse(read('test/demo/tsconfig.json')) as { files: string[] }).files;
    const scripts = services
      .flatMap(([, s]) => s.command ?? [])
      .filter((part) => part.startsWith('test/demo/dist/'));
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    for (const script of scripts) {
      const source = /^test\/demo\/dist\/demo\/(.+)\.js$/.exec(script)?.[1];
      expect(files, script).toContain(`${source}.ts`);
    }
  });

  it('gives the proxies an environment their config schema accepts, sharing Redis', () => {
    const keys = configSchemaKeys();
    for (const [name, s] of proxies) {
      const env = s.environment ?? {};
      for (const key of Object.keys(env)) expect(keys, `${name}: ${key}`).toContain(key);
      expect(() => loadConfig(env), name).not.toThrow();
      expect(env.REDIS_URL, name).toMatch(/^redis:\/\/redis:/);
    }
  });

  it('paces the proxies at the limit the fake upstream enforces', () => {
    const upstream = compose.services.upstream?.environment ?? {};
    for (const [name, s] of proxies) {
      expect(s.environment?.BATCH_RATE_PER_SEC, name).toBe(upstream.FAKE_BATCH_RATE_PER_SEC);
      expect(s.environment?.BATCH_BURST, name).toBe(upstream.FAKE_BATCH_BURST);
    }
  });

  it('runs the proxies read-only, without capabilities, with time to drain', () => {
    for (const [name, s] of proxies) {
      const config = loadConfig(s.environment ?? {});
      expect(s.read_only, name).toBe(true);
      expect(s.cap_drop, name).toContain('ALL');
      const grace = Number(/^(\d+)s$/.exec(s.stop_grace_period ?? '')?.[1] ?? 10);
      expect(grace * 1000, name).toBeGreaterThan(config.SHUTDOWN_GRACE_MS);
    }
  });

  it('publishes ports on loopback only', () => {
    for (const [name, s] of services) {
      for (const port of s.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });
});

describe('infra/compose.base-images.yaml', () => {
  const override = parse(read('infra/compose.base-images.yaml'), { merge: true }) as {
    services: Record<string, Service & { build?: { args?: Record<string, string>; network?: string } }>;
  };

  it('overrides only services of compose.yaml, and every one that builds', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(Object.keys(override.services)));
    for (const [name] of services.filter(([, s]) => s.build)) {
      expect(override.services[name]?.build?.args?.NODE_IMAGE, name).toMatch(/^\$\{NODE_IMAGE[:?}]/);
    }
  });

  it('takes Redis from REDIS_IMAGE, while compose.yaml keeps the upstream images', () => {
    expect(override.services.redis?.image).toMatch(/^\$\{REDIS_IMAGE[:?}]/);
    expect(compose.services.redis?.image).toMatch(/^redis:/);
    expect(parseDockerfile(read('infra/docker/Dockerfile')).args.get('NODE_IMAGE')).toMatch(/^node:/);
  });
});
