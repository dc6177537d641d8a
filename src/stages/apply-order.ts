import type { KubeObject } from './objects.js'

/**
 * The order a stage's manifests are applied in. Namespaces first, then CustomResourceDefinitions (the installer
 * waits for them to be Established before going on), then everything else by kind in Helm's install order (service
 * accounts, secrets and config before the workloads that mount them, RBAC before workloads, webhooks last so they
 * cannot block objects applied before their service is up), then kinds not in that list (custom resources). Within a
 * kind the order is the order in the bundle (file name, then document), so the result is deterministic.
 */
export const KIND_ORDER = [
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PriorityClass',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'SecretList',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'ClusterRole',
  'ClusterRoleList',
  'ClusterRoleBinding',
  'ClusterRoleBindingList',
  'Role',
  'RoleList',
  'RoleBinding',
  'RoleBindingList',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
]

export interface ApplyPhases<T> {
  namespaces: T[]
  crds: T[]
  rest: T[]
}

const isCrd = (o: KubeObject) =>
  o.kind === 'CustomResourceDefinition' && o.apiVersion.startsWith('apiextensions.k8s.io/')
const isNamespace = (o: KubeObject) => o.kind === 'Namespace' && o.apiVersion === 'v1'

/** Splits `items` into the three apply phases, each in apply order. */
export function orderForApply<T>(items: T[], objectOf: (item: T) => KubeObject): ApplyPhases<T> {
  const namespaces: T[] = []
  const crds: T[] = []
  const rest: { item: T; rank: number; index: number }[] = []
  items.forEach((item, index) => {
    const object = objectOf(item)
    if (isNamespace(object)) namespaces.push(item)
    else if (isCrd(object)) crds.push(item)
    else {
      const known = KIND_ORDER.indexOf(object.kind)
      rest.push({ item, rank: known < 0 ? KIND_ORDER.length : known, index })
    }
  })
  rest.sort((a, b) => a.rank - b.rank || a.index - b.index)
  return { namespaces, crds, rest: rest.map((r) => r.item) }
}

/** The phases flattened: the full apply order. Deletion goes the other way. */
export function applyOrder<T>(items: T[], objectOf: (item: T) => KubeObject): T[] {
  const { namespaces, crds, rest } = orderForApply(items, objectOf)
  return [...namespaces, ...crds, ...rest]
}
