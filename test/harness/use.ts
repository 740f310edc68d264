// Vitest hooks for the e2e files: start the built proxy (and the fake upstream and redis it talks to)
// once before a file's (or a describe's) tests, stop everything after them.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { type FakeGraph, type FakeGraphOptions, startFakeGraph } from '../fake-graph/index.js';
import { type FakeUpstream, type FakeUpstreamOptions, startFakeUpstream } from '../fake-upstream/index.js';
import { type ProxyProcess, type StartProxyOptions, startProxyProcess } from './process.js';
import { type RedisProcess, startRedis } from './redis.js';

/** What `useProxy` started before the proxy, for an env that needs their addresses. */
export interface Started {
  upstream: FakeUpstream;
  graph: FakeGraph;
  redis: RedisProcess;
}

/** The proxy's environment, or a function of what was started before it (called in beforeAll). */
export type ProxyEnv =
  | Record<string, string>
  | ((started: Started) => Record<string, string> | Promise<Record<string, string>>);

export interface UseProxyOptions extends StartProxyOptions {
  /** Starts a fake TalkJS upstream first; UPSTREAM_URL defaults to it. */
  upstream?: FakeUpstreamOptions;
  /** Starts a fake Microsoft Graph first; UPSTREAM_URL defaults to it. */
  graph?: FakeGraphOptions;
  /** Starts a redis-server first (the env says how the proxy reaches it: REDIS_URL, sentinels...). */
  redis?: boolean;
  /** Asserted after the tests: the code the proxy exits with on SIGTERM (usually 0). */
  exitCode?: number;
}

/** Handles filled in by beforeAll: use them inside tests and hooks, not at a file's top level. */
export interface UsedProxy extends Started {
  proxy: ProxyProcess;
}

/**
 * Registers a beforeAll that starts what `options` asks for, then the proxy with `env`, and an afterAll
 * that stops them in reverse order. Call it at the top of a file or inside a describe.
 */
export function useProxy(env: ProxyEnv, options: UseProxyOptions = {}): UsedProxy {
  const { upstream: upstreamOptions, graph: graphOptions, redis: withRedis, exitCode, ...start } = options;
  const proxy = late<ProxyProcess>('proxy');
  const upstream = late<FakeUpstream>('upstream');
  const graph = late<FakeGraph>('graph');
  const redis = late<RedisProcess>('redis');
  const handles: UsedProxy = {
    proxy: proxy.handle,
    upstream: upstream.handle,
    graph: graph.handle,
    redis: redis.handle,
  };

  beforeAll(async () => {
    const defaults: Record<string, string> = {};
    if (upstreamOptions) defaults.UPSTREAM_URL = upstream.set(await startFakeUpstream(upstreamOptions)).url;
    if (graphOptions) defaults.UPSTREAM_URL = graph.set(await startFakeGraph(graphOptions)).url;
    if (withRedis) redis.set(await startRedis());
    const resolved = typeof env === 'function' ? await env(handles) : env;
    proxy.set(await startProxyProcess({ ...defaults, ...resolved }, start));
  });

  afterAll(async () => {
    const code = await proxy.value?.stop();
    await redis.value?.stop();
    await graph.value?.close();
    await upstream.value?.close();
    if (exitCode !== undefined && proxy.value) expect(code).toBe(exitCode);
  });

  return handles;
}

/** Writes `secrets` (appId -> secret key) to `dir`/secrets.json: the env of AUTH_MODE=app-token. */
export function appTokenEnv(dir: string, secrets: Record<string, string>): Record<string, string> {
  const file = join(dir, 'secrets.json');
  writeFileSync(file, JSON.stringify(secrets));
  return { AUTH_MODE: 'app-token', APP_SECRETS_FILE: file };
}

/**
 * Cleanups a test registers as it starts things (`cleanup.push(() => x.stop())`), run after each test,
 * last first.
 */
export function useCleanup(): { push(...fns: Array<() => Promise<unknown>>): void } {
  let fns: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of fns.reverse()) await fn();
    fns = [];
  });
  return { push: (...more) => void fns.push(...more) };
}

/** A stand-in for an object made in beforeAll: it forwards to the object once set, and throws before. */
function late<T extends object>(name: string): { handle: T; value: T | undefined; set(value: T): T } {
  const slot: { handle: T; value: T | undefined; set(value: T): T } = {
    value: undefined,
    set(value) {
      slot.value = value;
      return value;
    },
    handle: new Proxy({} as T, {
      get(_target, key) {
        const value = target();
        const field: unknown = Reflect.get(value, key);
        return typeof field === 'function' ? field.bind(value) : field;
      },
      set: (_target, key, field) => Reflect.set(target(), key, field),
      has: (_target, key) => Reflect.has(target(), key),
    }),
  };
  const target = (): T => {
    if (slot.value === undefined) throw new Error(`${name} is not started: use it inside a test or hook`);
    return slot.value;
  };
  return slot;
}
