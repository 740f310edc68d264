// Our own rules for the rendered manifests, beyond the API schema: each returns readable problems
// (none when the rule holds), so a failing test says exactly which object and field broke it.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { type Config, loadConfig } from '../../apps/proxy/src/process/config.js';
import type { K8sObject } from './kustomize.js';

const CONFIG_TS = fileURLToPath(new URL('../../apps/proxy/src/process/config.ts', import.meta.url));

/**
 * The variables config.ts parses: every `NAME: z.…` property in the file, so the `z.object({...})`
 * and the field groups spread into it (`...paceFields`) alike (as test/docs/config.test.ts reads it).
 */
export function configSchemaKeys(source = readFileSync(CONFIG_TS, 'utf8')): Set<string> {
  const keys = new Set(Array.from(source.matchAll(/^\s+([A-Z][A-Z0-9_]*):\s*z\./gm), (m) => m[1] as string));
  if (keys.size === 0) throw new Error('config.ts: found no `NAME: z.…` schema property');
  return keys;
}

/** Standard variables the proxy reads besides its schema (SPEC §9: `OTEL_*`). */
const EXTRA_ENV = /^OTEL_[A-Z0-9_]+$/;
/** Names whose literal value would be a secret; `*_FILE` names a mounted file, not its content. */
const SECRET_NAME = /SECRET|PASSWORD|TOKEN|API_?KEY|PRIVATE_?KEY/i;
const K8S_DEFAULT_GRACE_SECONDS = 30;

export interface PodContainer {
  readonly deployment: IDeployment;
  readonly pod: IPodSpec;
  readonly container: IContainer;
  /** `container` in spec.containers; `sidecar` an init container with restartPolicy Always. */
  readonly role: 'container' | 'sidecar' | 'init';
  readonly id: string;
}

export type EnvSource =
  | { readonly kind: 'literal'; readonly value: string; readonly origin: string }
  | { readonly kind: 'secret'; readonly origin: string }
  | { readonly kind: 'field'; readonly origin: string };

export const deploymentsOf = (objs: readonly K8sObject[]): IDeployment[] =>
  objs.filter((o) => o.apiVersion === 'apps/v1' && o.kind === 'Deployment') as unknown as IDeployment[];

export function podContainers(objs: readonly K8sObject[]): PodContainer[] {
  return deploymentsOf(objs).flatMap((deployment) => {
    const pod = deployment.spec?.template.spec;
    if (!pod) return [];
    const name = deployment.metadata?.name ?? '?';
    return [
      ...(pod.initContainers ?? []).map((container) => ({
        deployment,
        pod,
        container,
        role: container.restartPolicy === 'Always' ? ('sidecar' as const) : ('init' as const),
        id: `Deployment/${name} initContainer ${container.name}`,
      })),
      ...pod.containers.map((container) => ({
        deployment,
        pod,
        container,
        role: 'container' as const,
        id: `Deployment/${name} container ${container.name}`,
      })),
    ];
  });
}

export const isProxyImage = (image: string | undefined): boolean =>
  image !== undefined && /(^|\/)batch-proxy(:|@|$)/.test(image);

export const proxyContainers = (objs: readonly K8sObject[]): PodContainer[] =>
  podContainers(objs).filter((c) => isProxyImage(c.container.image));

const configMap = (objs: readonly K8sObject[], name: string): Record<string, string> | undefined => {
  const cm = objs.find((o) => o.apiVersion === 'v1' && o.kind === 'ConfigMap' && o.metadata.name === name);
  return cm ? ((cm.data as Record<string, string> | undefined) ?? {}) : undefined;
};

/** A container's environment as the kubelet builds it: envFrom first, then env (env wins). */
export function envOf(
  objs: readonly K8sObject[],
  c: PodContainer,
): { env: Map<string, EnvSource>; problems: string[] } {
  const env = new Map<string, EnvSource>();
  const problems: string[] = [];
  for (const from of c.container.envFrom ?? []) {
    if (from.configMapRef) {
      const data = configMap(objs, from.configMapRef.name ?? '');
      if (!data) {
        problems.push(`${c.id}: envFrom ConfigMap ${from.configMapRef.name} is not in the rendered output`);
        continue;
      }
      for (const [k, v] of Object.entries(data)) {
        env.set(`${from.prefix ?? ''}${k}`, {
          kind: 'literal',
          value: v,
          origin: `ConfigMap/${from.configMapRef.name}`,
        });
      }
    }
    if (from.secretRef)
      problems.push(`${c.id}: envFrom secretRef hides which variables it sets; use secretKeyRef`);
  }
  for (const e of c.container.env ?? []) {
    if (e.value !== undefined) env.set(e.name, { kind: 'literal', value: e.value, origin: 'env' });
    else if (e.valueFrom?.secretKeyRef)
      env.set(e.name, { kind: 'secret', origin: `Secret/${e.valueFrom.secretKeyRef.name}` });
    else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      const value = configMap(objs, name ?? '')?.[key];
      if (value === undefined)
        problems.push(`${c.id}: ${e.name} refers to missing ConfigMap key ${name}/${key}`);
      else env.set(e.name, { kind: 'literal', value, origin: `ConfigMap/${name}` });
    } else env.set(e.name, { kind: 'field', origin: 'valueFrom' });
  }
  return { env, problems };
}

/** Stand-ins for values that only exist in the cluster, so the schema can still judge the rest. */
const PLACEHOLDERS: Record<string, string> = { REDIS_URL: 'redis://placeholder.invalid:6379/0' };

/** Every name is in the proxy's config schema and the whole environment passes its validation. */
export function proxyEnvProblems(
  objs: readonly K8sObject[],
  c: PodContainer,
  keys: ReadonlySet<string>,
): { problems: string[]; config?: Config } {
  const { env, problems } = envOf(objs, c);
  for (const name of env.keys()) {
    if (!keys.has(name) && !EXTRA_ENV.test(name)) {
      problems.push(
        `${c.id}: ${name} is not a variable of the proxy's config schema (apps/proxy/src/process/config.ts)`,
      );
    }
  }
  const plain: Record<string, string> = {};
  for (const [name, source] of env) {
    plain[name] = source.kind === 'literal' ? source.value : (PLACEHOLDERS[name] ?? 'placeholder');
  }
  try {
    return { problems, config: loadConfig(plain) };
  } catch (error) {
    problems.push(`${c.id}: the proxy would refuse this environment: ${(error as Error).message}`);
    return { problems };
  }
}

/** No secret as a literal: not in a container's env, not in a ConfigMap (both are plain text). */
export function plainSecretProblems(objs: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  const judge = (where: string, name: string, value: string) => {
    if (SECRET_NAME.test(name) && !name.endsWith('_FILE')) {
      problems.push(
        `${where}: ${name} holds a literal value; take it from a Secret (secretKeyRef or a file)`,
      );
    }
    if (/^rediss?:\/\//i.test(value) || name === 'REDIS_URL') {
      try {
        if (new URL(value).password !== '')
          problems.push(`${where}: ${name} is a Redis URL with a password in plain text`);
      } catch {
        // Not a URL: the proxy's own validation reports it.
      }
    }
  };
  for (const c of podContainers(objs)) {
    for (const e of c.container.env ?? []) if (e.value !== undefined) judge(c.id, e.name, e.value);
  }
  for (const o of objs) {
    if (o.apiVersion === 'v1' && o.kind === 'ConfigMap') {
      for (const [k, v] of Object.entries((o.data as Record<string, string> | undefined) ?? {})) {
        judge(`ConfigMap/${o.metadata.name}`, k, v);
      }
    }
  }
  return problems;
}

function probePort(c: IContainer, probe: IProbe | undefined): number | undefined {
  const port = probe?.httpGet?.port;
  if (typeof port === 'number') return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** Readiness on /readyz and liveness on /healthz, both on the admin port; startup, if any, too. */
export function probeProblems(c: PodContainer, config: Config): string[] {
  const problems: string[] = [];
  const want: Array<[string, IProbe | undefined, readonly string[]]> = [
    ['readinessProbe', c.container.readinessProbe, ['/readyz']],
    ['livenessProbe', c.container.livenessProbe, ['/healthz']],
  ];
  if (c.container.startupProbe)
    want.push(['startupProbe', c.container.startupProbe, ['/healthz', '/readyz']]);
  for (const [name, probe, paths] of want) {
    if (!probe?.httpGet) {
      problems.push(`${c.id}: no ${name} with httpGet`);
      continue;
    }
    if (!paths.includes(probe.httpGet.path ?? '')) {
      problems.push(`${c.id}: ${name} asks ${probe.httpGet.path}, expected ${paths.join(' or ')}`);
    }
    const port = probePort(c.container, probe);
    if (port !== config.ADMIN_PORT) {
      problems.push(
        `${c.id}: ${name} goes to port ${probe.httpGet.port} (${port}), not ADMIN_PORT ${config.ADMIN_PORT}`,
      );
    }
  }
  return problems;
}

/** Seconds a preStop hook holds the container before SIGTERM (sleep action or `sleep N`). */
export function preStopSeconds(c: IContainer): number {
  const hook = c.lifecycle?.preStop;
  if (hook?.sleep) return hook.sleep.seconds;
  const cmd = hook?.exec?.command ?? [];
  const i = cmd.findIndex((part) => /(^|\/)sleep$/.test(part));
  return i >= 0 ? Number(cmd[i + 1] ?? 0) : 0;
}

/** The kubelet's SIGKILL comes after the drain: grace > preStop + SHUTDOWN_GRACE_MS. */
export function shutdownProblems(c: PodContainer, config: Config): string[] {
  const grace = c.pod.terminationGracePeriodSeconds ?? K8S_DEFAULT_GRACE_SECONDS;
  const needed = preStopSeconds(c.container) + config.SHUTDOWN_GRACE_MS / 1000;
  return grace > needed
    ? []
    : [
        `${c.id}: terminationGracePeriodSeconds ${grace} is not more than preStop + SHUTDOWN_GRACE_MS = ${needed} s`,
      ];
}

export function resourceProblems(c: PodContainer): string[] {
  const r = c.container.resources;
  const problems: string[] = [];
  for (const kind of ['requests', 'limits'] as const) {
    for (const res of ['cpu', 'memory']) {
      if (r?.[kind]?.[res] === undefined) problems.push(`${c.id}: no resources.${kind}.${res}`);
    }
  }
  return problems;
}

/** Pod Security Standard "restricted", with the container's settings over the pod's. */
export function securityProblems(c: PodContainer): string[] {
  const pod = c.pod.securityContext ?? {};
  const sc = c.container.securityContext ?? {};
  const problems: string[] = [];
  const fail = (what: string) => problems.push(`${c.id}: ${what}`);
  if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) fail('runAsNonRoot is not true');
  if ((sc.runAsUser ?? pod.runAsUser) === 0) fail('runs as user 0');
  if (sc.readOnlyRootFilesystem !== true) fail('readOnlyRootFilesystem is not true');
  if (sc.allowPrivilegeEscalation !== false) fail('allowPrivilegeEscalation is not false');
  if (sc.privileged === true) fail('is privileged');
  if (!sc.capabilities?.drop?.includes('ALL')) fail('does not drop ALL capabilities');
  if ((sc.capabilities?.add ?? []).length > 0) fail(`adds capabilities ${sc.capabilities?.add?.join(', ')}`);
  const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
    fail(`seccompProfile is ${seccomp ?? 'unset'}`);
  if (c.pod.hostNetwork || c.pod.hostPID || c.pod.hostIPC) fail('shares a host namespace');
  return problems;
}

/** A read-only root needs a writable /tmp (Node and its libraries may use it). */
export function tmpProblems(c: PodContainer): string[] {
  const mount = c.container.volumeMounts?.find((m) => m.mountPath === '/tmp');
  const volume = c.pod.volumes?.find((v) => v.name === mount?.name);
  return mount && volume?.emptyDir ? [] : [`${c.id}: no emptyDir mounted at /tmp`];
}

export function imageProblems(c: PodContainer): string[] {
  const image = c.container.image ?? '';
  const tag = /:([^/:@]+)$/.exec(image)?.[1];
  if (image.includes('@sha256:')) return [];
  if (tag === undefined || tag === 'latest') return [`${c.id}: image ${image} has no pinned tag`];
  return [];
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Deployment selector, Service, PodDisruptionBudget and spread constraints all select the pods. */
export function selectorProblems(objs: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  const pods = deploymentsOf(objs).map((d) => ({
    name: d.metadata?.name,
    labels: d.spec?.template.metadata?.labels,
  }));
  for (const d of deploymentsOf(objs)) {
    const labels = d.spec?.template.metadata?.labels;
    if (!matches(d.spec?.selector.matchLabels, labels)) {
      problems.push(`Deployment/${d.metadata?.name}: selector does not match its pod template labels`);
    }
    for (const t of d.spec?.template.spec?.topologySpreadConstraints ?? []) {
      if (!matches(t.labelSelector?.matchLabels, labels)) {
        problems.push(
          `Deployment/${d.metadata?.name}: spread constraint on ${t.topologyKey} selects other pods`,
        );
      }
    }
  }
  for (const o of objs) {
    const spec = o.spec as
      | { selector?: Record<string, string> & { matchLabels?: Record<string, string> } }
      | undefined;
    const selector =
      o.kind === 'Service'
        ? spec?.selector
        : o.kind === 'PodDisruptionBudget'
          ? spec?.selector?.matchLabels
          : undefined;
    if (
      (o.kind === 'Service' || o.kind === 'PodDisruptionBudget') &&
      !pods.some((p) => matches(selector, p.labels))
    ) {
      problems.push(`${o.kind}/${o.metadata.name}: selects no pod of this kustomization`);
    }
  }
  return problems;
}
