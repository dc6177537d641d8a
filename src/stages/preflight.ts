import { AirgapError } from '../errors.js'
import { clusterError, type KubeClient } from './kube-client.js'
import { groupOf, isPlainObject } from './objects.js'
import type { InstallPlan } from './plan-stages.js'
import { STATE_CONFIGMAP } from './state.js'
import { forEachLimited } from './wait.js'

/**
 * Before stage 1: is the cluster reachable (its version), and may the kubeconfig user do what the stages will do?
 * Every (verb, resource, namespace) the install needs is asked with a SelfSubjectAccessReview: create and patch on
 * every kind the stages apply (server-side apply needs both), namespaces and CRDs, the Secrets Helm keeps its
 * releases in, and the state ConfigMap. All denials are reported at once.
 */
export interface PermissionCheck {
  verb: string
  group: string
  resource: string
  namespace?: string
  allowed: boolean
  reason?: string
}

export interface PreflightReport {
  server: string
  serverVersion: string
  checks: PermissionCheck[]
  /** Kinds the cluster does not serve yet and the bundle does not define: checked when their stage runs. */
  unknownKinds: string[]
}

export async function runPreflight(
  client: KubeClient,
  plan: InstallPlan,
  options: { namespace: string; signal?: AbortSignal },
): Promise<PreflightReport> {
  const { signal } = options
  let serverVersion: string
  try {
    serverVersion = await client.serverVersion(signal)
  } catch (error) {
    throw clusterError(error, 'checking that the cluster is reachable', client.server)
  }

  const wanted = new Map<string, Omit<PermissionCheck, 'allowed' | 'reason'>>()
  const want = (verb: string, group: string, resource: string, namespace?: string) => {
    const key = `${verb} ${group} ${resource} ${namespace ?? ''}`
    if (!wanted.has(key)) wanted.set(key, { verb, group, resource, ...(namespace ? { namespace } : {}) })
  }
  const bundleCrds = crdsOf(plan)
  const unknownKinds = new Set<string>()
  for (const stage of plan.stages) {
    for (const { object } of stage.objects) {
      const group = groupOf(object.apiVersion)
      let resource: string | undefined
      let namespaced = Boolean(object.metadata.namespace)
      try {
        const info = await client.resourceOf(object.apiVersion, object.kind, signal)
        if (info) {
          resource = info.name
          namespaced = info.namespaced
        }
      } catch (error) {
        throw clusterError(error, `looking up the kind ${object.kind}`, client.server)
      }
      resource ??= bundleCrds.get(`${group}/${object.kind}`)
      if (!resource) {
        unknownKinds.add(`${object.kind} (${object.apiVersion})`)
        continue
      }
      for (const verb of ['create', 'patch'])
        want(verb, group, resource, namespaced ? object.metadata.namespace : undefined)
    }
    for (const chart of stage.charts) {
      for (const verb of ['get', 'create']) want(verb, '', 'namespaces')
      for (const verb of ['get', 'list', 'create', 'patch']) want(verb, '', 'secrets', chart.namespace)
    }
  }
  for (const verb of ['create', 'patch']) {
    want(verb, '', 'namespaces')
    want(verb, 'apiextensions.k8s.io', 'customresourcedefinitions')
  }
  for (const verb of ['get', 'create', 'patch']) want(verb, '', 'configmaps', options.namespace)
  // The install lock (install-lock.ts).
  for (const verb of ['get', 'create', 'update', 'delete'])
    want(verb, 'coordination.k8s.io', 'leases', options.namespace)

  const checks: PermissionCheck[] = []
  await forEachLimited([...wanted.values()], 8, async (attributes) => {
    try {
      const answer = await client.canI(attributes, signal)
      checks.push({
        ...attributes,
        allowed: answer.allowed,
        ...(answer.reason ? { reason: answer.reason } : {}),
      })
    } catch (error) {
      throw clusterError(error, 'checking permissions (SelfSubjectAccessReview)', client.server)
    }
  })
  checks.sort((a, b) => describeCheck(a).localeCompare(describeCheck(b)))
  const denied = checks.filter((c) => !c.allowed)
  const report: PreflightReport = {
    server: client.server,
    serverVersion,
    checks,
    unknownKinds: [...unknownKinds],
  }
  if (denied.length) {
    throw new AirgapError(
      'E_CLUSTER',
      `Preflight: the kubeconfig user (context ${client.context}) lacks ${denied.length} permission(s) the install needs on ${client.server}:\n${denied
        .slice(0, 30)
        .map((c) => `  cannot ${describeCheck(c)}`)
        .join('\n')}${denied.length > 30 ? `\n  … and ${denied.length - 30} more` : ''}`,
      {
        hints: [
          'Use a kubeconfig with cluster-admin rights for the install, or grant these permissions.',
          `The state is kept in the ConfigMap ${STATE_CONFIGMAP} of namespace ${options.namespace}.`,
        ],
        data: { ...report },
      },
    )
  }
  return report
}

/** One line for the preflight task's end. */
export function summarisePreflight(report: PreflightReport): string {
  return `Kubernetes ${report.serverVersion} at ${report.server}; ${report.checks.length} permissions granted${
    report.unknownKinds.length ? `; ${report.unknownKinds.length} kinds checked when their stage runs` : ''
  }`
}

export function describeCheck(c: Omit<PermissionCheck, 'allowed'>): string {
  return `${c.verb} ${c.resource}${c.group ? `.${c.group}` : ''}${c.namespace ? ` in namespace ${c.namespace}` : ' (cluster-wide)'}`
}

/** group/kind → plural of the CRDs the bundle itself installs. */
function crdsOf(plan: InstallPlan): Map<string, string> {
  const out = new Map<string, string>()
  for (const stage of plan.stages) {
    for (const { object } of stage.objects) {
      if (object.kind !== 'CustomResourceDefinition' || !isPlainObject(object.spec)) continue
      const names = isPlainObject(object.spec.names) ? object.spec.names : {}
      if (typeof names.kind === 'string' && typeof names.plural === 'string')
        out.set(`${String(object.spec.group)}/${names.kind}`, names.plural)
    }
  }
  return out
}
