import type { BundleMetadata } from '../bundle/metadata.js'
import type { EventSink } from '../events/types.js'
import { readInstallState } from '../stages/install-status.js'
import { type AuditResult, auditFailure, auditImages } from './audit-images.js'

/**
 * The last step of `install`: the air-gap audit of what the install put in the cluster. It looks in the namespaces
 * the bundle installed into (from the install state: its objects' namespaces, the Namespaces it created, its Helm
 * releases' namespaces), not the whole cluster, whose own images (kube-system) the bundle does not ship. Every image
 * there must be in the bundle's lock, or in the served registry while the install serves it. Anything missing fails
 * the install (E_CLUSTER, the report as data).
 */
export interface AuditInstallOptions {
  kubeconfig: string
  context?: string
  /** The installer's namespace (where the state is). */
  namespace?: string
  lock: BundleMetadata
  /** The site server this install serves, checked live. */
  serving?: { url: string; listenUrl: string; registryHost: string; caFile?: string }
  /** Registry prefixes images were relocated to (host[:port][/prefix]). */
  siteRegistries?: string[]
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export async function auditInstall(options: AuditInstallOptions): Promise<AuditResult> {
  const state = await readInstallState({
    kubeconfig: options.kubeconfig,
    context: options.context,
    namespace: options.namespace,
    signal: options.signal,
  })
  const namespaces = new Set<string>()
  for (const stage of state?.stages ?? []) {
    for (const object of stage.objects) {
      if (object.namespace) namespaces.add(object.namespace)
      if (object.kind === 'Namespace' && object.apiVersion === 'v1') namespaces.add(object.name)
    }
    for (const release of stage.releases) namespaces.add(release.namespace)
  }
  const { serving } = options
  const result = await auditImages({
    kubeconfig: options.kubeconfig,
    context: options.context,
    namespaces: [...namespaces].sort(),
    lock: options.lock,
    registry: serving
      ? { url: localUrl(serving), caFiles: serving.caFile ? [serving.caFile] : undefined }
      : undefined,
    siteRegistries: [...(options.siteRegistries ?? []), ...(serving ? [serving.registryHost] : [])],
    toolVersion: options.toolVersion,
    sink: options.sink,
    signal: options.signal,
  })
  const failure = auditFailure(result, 'The install finished, but the air-gap audit failed: ')
  if (failure) {
    failure.hints.push('Run `astrago-airgap install --no-audit` to skip this check (not recommended).')
    throw failure
  }
  return result
}

/** The served registry as this machine reaches it: a wildcard listen address is reached on loopback. */
function localUrl(serving: { url: string; listenUrl: string }): string {
  const listen = new URL(serving.listenUrl)
  if (listen.hostname === '0.0.0.0' || listen.hostname === '[::]' || listen.hostname === '::') {
    return `${listen.protocol}//127.0.0.1:${listen.port}`
  }
  return serving.url
}
