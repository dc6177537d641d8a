/**
 * Kubernetes objects as plain JSON, and the references the installer records for them. Objects are never passed
 * through @kubernetes/client-node's typed models: those drop every field they do not know (including
 * `x-kubernetes-preserve-unknown-fields` and `default` in CRD schemas), so manifests stay plain JSON end to end.
 */
export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [key: string]: unknown
  }
  [key: string]: unknown
}

/** What the install state records for each applied object. */
export interface ObjectRef {
  apiVersion: string
  kind: string
  /** Absent for cluster-scoped objects. */
  namespace?: string
  name: string
}

/** A Helm release the install state records. */
export interface ReleaseRef {
  name: string
  namespace: string
  chart: string
  version: string
}

export function refOf(object: KubeObject): ObjectRef {
  const ref: ObjectRef = { apiVersion: object.apiVersion, kind: object.kind, name: object.metadata.name }
  if (object.metadata.namespace) ref.namespace = object.metadata.namespace
  return ref
}

/** The API group of an apiVersion: '' for core (v1), 'apps' for apps/v1. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/')
  return slash < 0 ? '' : apiVersion.slice(0, slash)
}

/**
 * Identity of an object regardless of the API version it was written with (apps/v1 and apps/v1beta2 Deployments
 * named the same are the same object): group, kind, namespace, name.
 */
export function refKey(ref: ObjectRef): string {
  return `${groupOf(ref.apiVersion)}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`
}

export function releaseKey(release: { name: string; namespace: string }): string {
  return `${release.namespace}/${release.name}`
}

/** "Deployment demo/operator", "CustomResourceDefinition widgets.example.com". */
export function formatRef(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Kinds that are cluster-scoped in every Kubernetes release (used where the cluster cannot be asked: dry runs). */
export const WELL_KNOWN_CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'CustomResourceDefinition',
  'APIService',
  'ClusterRole',
  'ClusterRoleBinding',
  'StorageClass',
  'CSIDriver',
  'CSINode',
  'VolumeAttachment',
  'PriorityClass',
  'RuntimeClass',
  'IngressClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'CertificateSigningRequest',
  'FlowSchema',
  'PriorityLevelConfiguration',
])
