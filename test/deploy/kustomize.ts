// Renders infra/k8s with `kubectl kustomize` and checks each object against the Kubernetes API schema,
// offline (kubernetes-models: the OpenAPI schemas compiled to validators, Kubernetes 1.32).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';

export const K8S_DIR = fileURLToPath(new URL('../../infra/k8s/', import.meta.url));

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

const INSTALL_HINT =
  'kubectl is needed to render infra/k8s (`kubectl kustomize`, with Kustomize v4 or later for ' +
  'components). Install it and run again: on Debian, `apt-get install kubectl` (Google Cloud CLI ' +
  'repository) or any kubectl >= 1.21 on PATH; set KUBECTL to use another binary.';

/** The kubectl binary and its Kustomize version; throws an instructive error when it cannot be used. */
export function findKubectl(): { bin: string; kustomizeVersion: string } {
  const bin = process.env.KUBECTL ?? 'kubectl';
  const res = spawnSync(bin, ['version', '--client', '-o', 'json'], { encoding: 'utf8', timeout: 30_000 });
  if (res.error) throw new Error(`cannot run ${bin} (${res.error.message}). ${INSTALL_HINT}`);
  if (res.status !== 0) throw new Error(`${bin} version failed: ${res.stderr.trim()}. ${INSTALL_HINT}`);
  const info = JSON.parse(res.stdout) as {
    kustomizeVersion?: string;
    clientVersion?: { gitVersion?: string };
  };
  // kubectl before 1.21 does not report its (v2) Kustomize at all.
  const kustomizeVersion = info.kustomizeVersion ?? 'v2 or older';
  const major = Number(/^v?(\d+)\./.exec(kustomizeVersion)?.[1] ?? 0);
  if (major < 4) {
    throw new Error(
      `${bin} ${info.clientVersion?.gitVersion ?? ''} embeds Kustomize ${kustomizeVersion}, too old for components. ${INSTALL_HINT}`,
    );
  }
  return { bin, kustomizeVersion };
}

/** `kubectl kustomize <dir>` (dir relative to infra/k8s), parsed. */
export function render(bin: string, dir: string): K8sObject[] {
  const res = spawnSync(bin, ['kustomize', `${K8S_DIR}${dir}`], { encoding: 'utf8', timeout: 60_000 });
  if (res.error) throw new Error(`cannot run ${bin}: ${res.error.message}. ${INSTALL_HINT}`);
  if (res.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${res.stderr}`);
  return parseAllDocuments(res.stdout).map((doc) => {
    if (doc.errors.length > 0)
      throw new Error(`kubectl kustomize ${dir}: bad YAML: ${doc.errors[0]?.message}`);
    return doc.toJS() as K8sObject;
  });
}

/** `new Model(data).validate()`: any model class of kubernetes-models. */
const check =
  <M extends new (data: never) => { validate(): void }>(Model: M) =>
  (obj: K8sObject) =>
    new Model(obj as never).validate();

const VALIDATORS: Record<string, (obj: K8sObject) => void> = {
  'apps/v1/Deployment': check(Deployment),
  'autoscaling/v2/HorizontalPodAutoscaler': check(HorizontalPodAutoscaler),
  'policy/v1/PodDisruptionBudget': check(PodDisruptionBudget),
  'v1/ConfigMap': check(ConfigMap),
  'v1/Secret': check(Secret),
  'v1/Service': check(Service),
  'v1/ServiceAccount': check(ServiceAccount),
};

/** Schema problems of one object, as readable strings (none when valid). */
export function schemaProblems(obj: K8sObject): string[] {
  const id = `${obj.kind}/${obj.metadata?.name}`;
  const validate = VALIDATORS[`${obj.apiVersion}/${obj.kind}`];
  if (!validate)
    return [`${id}: no schema registered for ${obj.apiVersion} ${obj.kind} (add it to kustomize.ts)`];
  try {
    validate(obj);
    return [];
  } catch (error) {
    return [`${id}: ${error instanceof Error ? error.message : String(error)}`];
  }
}
