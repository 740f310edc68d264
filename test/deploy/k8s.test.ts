// infra/k8s: every kustomization renders with `kubectl kustomize`, is valid against the Kubernetes API
// schemas (offline), and keeps our rules: probes on the admin port, a drain that fits the grace
// period, no secret in plain text, limits, the restricted security profile, and only env var names
// the proxy's config schema knows. kubectl missing is a failure, not a skip (.ci/run provides it).

import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IService } from 'kubernetes-models/v1/Service';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../apps/proxy/src/process/config.js';
import {
  configSchemaKeys,
  deploymentsOf,
  envOf,
  imageProblems,
  plainSecretProblems,
  podContainers,
  probeProblems,
  proxyContainers,
  proxyEnvProblems,
  resourceProblems,
  securityProblems,
  selectorProblems,
  shutdownProblems,
  tmpProblems,
} from './invariants.js';
import { findKubectl, type K8sObject, render, schemaProblems } from './kustomize.js';

const KUSTOMIZATIONS = ['base', 'overlays/gateway', 'overlays/sidecar', 'dev-redis'] as const;
type Dir = (typeof KUSTOMIZATIONS)[number];

const keys = configSchemaKeys();
const rendered = new Map<Dir, K8sObject[]>();

/** Renders once per directory; a missing kubectl throws its install hint into every test. */
function objects(dir: Dir): K8sObject[] {
  let objs = rendered.get(dir);
  if (!objs) {
    objs = render(findKubectl().bin, dir);
    rendered.set(dir, objs);
  }
  return objs;
}

const byKind = <T>(objs: readonly K8sObject[], kind: string) =>
  objs.filter((o) => o.kind === kind) as unknown as T[];

describe('tooling', () => {
  it('finds kubectl with an embedded Kustomize that supports components', () => {
    expect(findKubectl().kustomizeVersion).toMatch(/^v\d+\./);
  });

  it('reads the variable names from the proxy config schema', () => {
    for (const name of ['PORT', 'ADMIN_PORT', 'REDIS_URL', 'APP_SECRETS_FILE', 'SHUTDOWN_GRACE_MS']) {
      expect(keys).toContain(name);
    }
  });

  it('reads the field groups spread into the schema too (PACING, PACE_*), and every parsed variable', () => {
    for (const name of ['PACING', 'PACE_MAX_RATE_PER_SEC', 'DIALECT', 'ACCESS_LOG']) {
      expect(keys).toContain(name);
    }
    // Each variable with a default comes back from loadConfig({}): one the reading missed shows here.
    const defaulted = Object.keys(loadConfig({})).filter((k) => /^[A-Z][A-Z0-9_]*$/.test(k));
    expect(defaulted.filter((k) => !keys.has(k))).toEqual([]);
  });
});

describe.each(KUSTOMIZATIONS)('infra/k8s/%s', (dir) => {
  beforeAll(() => {
    objects(dir);
  });

  it('renders with kubectl kustomize', () => {
    expect(objects(dir).length).toBeGreaterThan(0);
  });

  it('is valid against the Kubernetes API schemas', () => {
    expect(objects(dir).flatMap(schemaProblems)).toEqual([]);
  });

  it('sets resource requests and limits on every container', () => {
    expect(podContainers(objects(dir)).flatMap(resourceProblems)).toEqual([]);
  });

  it('runs every container under the restricted security profile', () => {
    expect(podContainers(objects(dir)).flatMap(securityProblems)).toEqual([]);
  });

  it('keeps secret values out of plain env and ConfigMaps', () => {
    expect(plainSecretProblems(objects(dir))).toEqual([]);
  });

  it('selects its own pods from every Deployment, Service, budget and spread constraint', () => {
    expect(selectorProblems(objects(dir))).toEqual([]);
  });
});

describe.each([
  'base',
  'overlays/gateway',
  'overlays/sidecar',
] as const)('the proxy in infra/k8s/%s', (dir) => {
  const proxies = () => {
    const list = proxyContainers(objects(dir));
    expect(list.length).toBeGreaterThan(0);
    return list;
  };
  const configOf = (c: ReturnType<typeof proxies>[number]) => {
    const { config, problems } = proxyEnvProblems(objects(dir), c, keys);
    if (!config) throw new Error(problems.join('\n'));
    return config;
  };

  it('uses only variables of the config schema, with values the proxy accepts', () => {
    expect(proxies().flatMap((c) => proxyEnvProblems(objects(dir), c, keys).problems)).toEqual([]);
  });

  it('probes /readyz and /healthz on the admin port', () => {
    expect(proxies().flatMap((c) => probeProblems(c, configOf(c)))).toEqual([]);
  });

  it('gives the pod longer to stop than preStop plus SHUTDOWN_GRACE_MS', () => {
    expect(proxies().flatMap((c) => shutdownProblems(c, configOf(c)))).toEqual([]);
  });

  it('mounts a writable /tmp over the read-only root filesystem', () => {
    expect(proxies().flatMap(tmpProblems)).toEqual([]);
  });

  it('pins the image tag', () => {
    expect(proxies().flatMap(imageProblems)).toEqual([]);
  });

  it('declares the data and admin ports it listens on', () => {
    for (const c of proxies()) {
      const config = configOf(c);
      const declared = (c.container.ports ?? []).map((p) => p.containerPort);
      expect(declared, c.id).toContain(config.ADMIN_PORT);
      if (c.role === 'container') expect(declared, c.id).toContain(config.PORT);
    }
  });
});

describe('infra/k8s/overlays/gateway', () => {
  const objs = () => objects('overlays/gateway');
  const proxy = () => {
    const [c, ...more] = proxyContainers(objs());
    expect(more).toEqual([]);
    if (!c) throw new Error('no proxy container');
    return c;
  };

  it('lets a HorizontalPodAutoscaler own the replica count (min >= 2)', () => {
    const [hpa] = byKind<IHorizontalPodAutoscaler>(objs(), 'HorizontalPodAutoscaler');
    const [deployment] = deploymentsOf(objs());
    expect(hpa?.spec?.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment?.metadata?.name });
    expect(hpa?.spec?.minReplicas).toBeGreaterThanOrEqual(2);
    expect(deployment?.spec?.replicas).toBeUndefined();
  });

  it('has a PodDisruptionBudget and spreads pods over zones and nodes', () => {
    expect(byKind(objs(), 'PodDisruptionBudget')).toHaveLength(1);
    const keys = (proxy().pod.topologySpreadConstraints ?? []).map((t) => t.topologyKey);
    expect(keys).toEqual(expect.arrayContaining(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']));
  });

  it('routes the Service to the data port by name', () => {
    const [service] = byKind<IService>(objs(), 'Service');
    const names = (proxy().container.ports ?? []).map((p) => p.name);
    for (const port of service?.spec?.ports ?? []) expect(names).toContain(port.targetPort);
  });

  it('takes REDIS_URL from a Secret and mounts the app secrets file from a Secret', () => {
    const c = proxy();
    const { env } = envOf(objs(), c);
    expect(env.get('REDIS_URL')).toEqual({ kind: 'secret', origin: 'Secret/batch-proxy-redis' });
    const file = env.get('APP_SECRETS_FILE');
    expect(file?.kind).toBe('literal');
    const path = file?.kind === 'literal' ? file.value : '';
    const mount = c.container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
    const volume = c.pod.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.secret?.secretName).toBe('batch-proxy-app-secrets');
    expect(mount?.readOnly).toBe(true);
  });

  it('runs in app-token mode and holds SIGTERM back with a preStop sleep', () => {
    const c = proxy();
    expect(c.container.lifecycle?.preStop).toBeDefined();
    expect(envOf(objs(), c).env.get('AUTH_MODE')).toMatchObject({ value: 'app-token' });
  });
});

describe('infra/k8s/overlays/sidecar', () => {
  const objs = () => objects('overlays/sidecar');

  it('adds the proxy as a native sidecar: an init container with restartPolicy Always', () => {
    const proxies = proxyContainers(objs());
    expect(proxies.map((c) => c.role)).toEqual(['sidecar']);
  });

  it('keeps the data port on loopback and points the app at it', () => {
    const [proxy] = proxyContainers(objs());
    if (!proxy) throw new Error('no proxy sidecar');
    const { config } = proxyEnvProblems(objs(), proxy, keys);
    expect(config?.HOST).toBe('127.0.0.1');
    const apps = podContainers(objs()).filter((c) => c.role === 'container');
    expect(apps.length).toBeGreaterThan(0);
    for (const app of apps) {
      const urls = (app.container.env ?? []).map((e) => e.value);
      expect(urls, app.id).toContain(`http://127.0.0.1:${config?.PORT}`);
    }
  });

  it('cannot multiply the upstream budget: a sidecar of a scaled app requires the shared Redis', () => {
    // Each replica has its own sidecar and the upstream's limits are per app: N sidecars pacing alone
    // would spend N budgets. The Secret is required, so the pod does not start without it.
    const [proxy] = proxyContainers(objs());
    if (!proxy) throw new Error('no proxy sidecar');
    const deployment = deploymentsOf(objs()).find((d) =>
      (d.spec?.template?.spec?.initContainers ?? []).some((c) => c.name === proxy.container.name),
    );
    expect(deployment?.spec?.replicas ?? 1).toBeGreaterThan(1);
    const redis = proxy.container.env?.find((e) => e.name === 'REDIS_URL');
    expect(redis?.valueFrom?.secretKeyRef).toEqual({ name: 'batch-proxy-redis', key: 'url' });
  });
});

describe('infra/k8s/dev-redis', () => {
  it('provides the Secret the gateway reads REDIS_URL from, pointing at its own Service', () => {
    const objs = objects('dev-redis');
    const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'batch-proxy-redis');
    const data = secret?.data as Record<string, string> | undefined;
    const url = new URL(Buffer.from(data?.url ?? '', 'base64').toString('utf8'));
    expect(url.protocol).toBe('redis:');
    expect(objs.some((o) => o.kind === 'Service' && o.metadata.name === url.hostname)).toBe(true);
  });
});

describe('the invariant checks themselves', () => {
  /** The gateway's objects with one Deployment edit: the checks must notice each. */
  function broken(
    edit: (pod: Record<string, unknown>, container: Record<string, unknown>) => void,
  ): K8sObject[] {
    const objs = structuredClone(objects('overlays/gateway'));
    const [c] = proxyContainers(objs);
    if (!c) throw new Error('no proxy container');
    edit(c.pod as unknown as Record<string, unknown>, c.container as unknown as Record<string, unknown>);
    return objs;
  }
  const proxyOf = (objs: K8sObject[]) => {
    const [c] = proxyContainers(objs);
    if (!c) throw new Error('no proxy container');
    return c;
  };

  it('catches a literal Redis password, an unknown variable and a bad value', () => {
    const objs = broken((_pod, c) => {
      c.env = [
        { name: 'REDIS_URL', value: 'redis://:hunter2@redis:6379' },
        { name: 'BATCH_SIZE', value: '10' },
        { name: 'BATCH_MAX_OPS', value: 'many' },
        { name: 'UPSTREAM_TOKEN', value: 'abc' },
      ];
    });
    expect(plainSecretProblems(objs).join('\n')).toMatch(
      /REDIS_URL is a Redis URL with a password[\s\S]*UPSTREAM_TOKEN/,
    );
    const env = proxyEnvProblems(objs, proxyOf(objs), keys).problems.join('\n');
    expect(env).toContain('BATCH_SIZE is not a variable');
    expect(env).toContain('BATCH_MAX_OPS');
  });

  it('catches an object the Kubernetes API would reject', () => {
    const objs = broken((_pod, c) => {
      c.ports = [{ name: 'admin', containerPort: '9464' }];
    });
    const deployment = objs.find((o) => o.kind === 'Deployment');
    if (!deployment) throw new Error('no Deployment');
    expect(schemaProblems(deployment).join()).toContain('containerPort must be integer');
  });

  it('catches probes on the wrong port, a short grace period, missing limits and a root container', () => {
    const objs = broken((pod, c) => {
      (c.readinessProbe as { httpGet: { port: string } }).httpGet.port = 'http';
      pod.terminationGracePeriodSeconds = 25;
      c.resources = { requests: { cpu: '100m' } };
      c.securityContext = { runAsUser: 0 };
    });
    const c = proxyOf(objs);
    const config = proxyEnvProblems(objs, c, keys).config;
    if (!config) throw new Error('config');
    expect(probeProblems(c, config).join()).toContain('readinessProbe goes to port http (8080)');
    expect(shutdownProblems(c, config).join()).toContain('terminationGracePeriodSeconds 25');
    expect(resourceProblems(c)).toHaveLength(3);
    expect(securityProblems(c).join('\n')).toMatch(/runs as user 0[\s\S]*readOnlyRootFilesystem/);
  });
});
