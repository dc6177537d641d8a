import { evaluateJsonPath, formatJsonPathValue, parseJsonPath, type Segment } from './jsonpath.js'
import type { ReadinessRule } from './load-stages.js'
import { isPlainObject } from './objects.js'

/**
 * When is an object ready? Pure functions over the object as the API server returns it, so they are tested on
 * fixtures. `failed` means waiting longer cannot help (a Job failed, a Deployment exceeded its progress deadline).
 */
export type ReadinessState = 'ready' | 'pending' | 'failed'

export interface Readiness {
  state: ReadinessState
  /** One line: why it is not ready yet, or what "ready" amounted to. */
  reason: string
}

export interface Condition {
  type: string
  status: string
  reason?: string
  message?: string
  lastTransitionTime?: string
}

type Obj = Record<string, unknown>

const ready = (reason: string): Readiness => ({ state: 'ready', reason })
const pending = (reason: string): Readiness => ({ state: 'pending', reason })
const failed = (reason: string): Readiness => ({ state: 'failed', reason })

/** The default rule of the object's kind; kinds without one are ready once they exist. */
export function evaluateReadiness(object: Obj | undefined): Readiness {
  if (!object) return pending('not found')
  const metadata = record(object.metadata)
  if (metadata.deletionTimestamp) return pending('being deleted')
  switch (object.kind) {
    case 'Deployment':
      return deploymentReadiness(object)
    case 'StatefulSet':
      return statefulSetReadiness(object)
    case 'DaemonSet':
      return daemonSetReadiness(object)
    case 'Job':
      return jobReadiness(object)
    case 'CustomResourceDefinition':
      return crdReadiness(object)
    case 'Pod':
      return podReadiness(object)
    case 'Namespace':
      return record(object.status).phase === 'Terminating' ? pending('Terminating') : ready('Active')
    case 'APIService':
      return conditionReadiness(object, 'Available')
    default:
      return ready('exists')
  }
}

/** A custom rule: the JSONPath finds a value, equal (as text) to `equals` when given. */
export function evaluateRule(object: Obj | undefined, rule: ReadinessRule, parsed?: Segment[]): Readiness {
  if (!object) return pending('not found')
  const values = evaluateJsonPath(parsed ?? parseJsonPath(rule.jsonPath), object)
  const shown = values.map(formatJsonPathValue).join(' ')
  if (rule.equals === undefined) {
    const found = values.some((v) => v !== null && v !== '' && v !== false)
    return found ? ready(`${rule.jsonPath} = ${shown}`) : pending(`${rule.jsonPath} finds nothing yet`)
  }
  if (values.length > 0 && values.every((v) => formatJsonPathValue(v) === rule.equals))
    return ready(`${rule.jsonPath} = ${rule.equals}`)
  return pending(
    values.length
      ? `${rule.jsonPath} is ${shown}, waiting for ${rule.equals}`
      : `${rule.jsonPath} finds nothing yet (waiting for ${rule.equals})`,
  )
}

export function conditionsOf(object: Obj | undefined): Condition[] {
  const list = record(object?.status).conditions
  if (!Array.isArray(list)) return []
  return list.filter(isPlainObject).map((c) => ({
    type: String(c.type ?? ''),
    status: String(c.status ?? ''),
    ...(c.reason ? { reason: String(c.reason) } : {}),
    ...(c.message ? { message: String(c.message) } : {}),
    ...(c.lastTransitionTime ? { lastTransitionTime: String(c.lastTransitionTime) } : {}),
  }))
}

export function findCondition(object: Obj | undefined, type: string): Condition | undefined {
  return conditionsOf(object).find((c) => c.type === type)
}

function conditionReadiness(object: Obj, type: string): Readiness {
  const c = findCondition(object, type)
  if (c?.status === 'True') return ready(`${type}`)
  return pending(c ? `${type} is ${c.status}${explain(c)}` : `no ${type} condition yet`)
}

/** Like `kubectl rollout status`, plus the Available condition. */
function deploymentReadiness(d: Obj): Readiness {
  const spec = record(d.spec)
  const status = record(d.status)
  const observed = generationPending(d)
  if (observed) return observed
  const progressing = findCondition(d, 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return failed(`exceeded its progress deadline${explain(progressing)}`)
  const wanted = num(spec.replicas, 1)
  const updated = num(status.updatedReplicas, 0)
  const total = num(status.replicas, 0)
  const available = num(status.availableReplicas, 0)
  if (updated < wanted) return pending(`${updated} of ${wanted} replicas updated`)
  if (total > updated) return pending(`${total - updated} old replicas are pending termination`)
  if (available < updated) return pending(`${available} of ${updated} updated replicas available`)
  const availableCondition = findCondition(d, 'Available')
  if (availableCondition?.status !== 'True')
    return pending(
      availableCondition
        ? `Available is ${availableCondition.status}${explain(availableCondition)}`
        : 'no Available condition yet',
    )
  return ready(`${available}/${wanted} replicas available`)
}

function statefulSetReadiness(s: Obj): Readiness {
  const spec = record(s.spec)
  const status = record(s.status)
  const observed = generationPending(s)
  if (observed) return observed
  const wanted = num(spec.replicas, 1)
  const readyReplicas = num(status.readyReplicas, 0)
  if (readyReplicas < wanted) return pending(`${readyReplicas} of ${wanted} replicas ready`)
  const strategy = record(spec.updateStrategy)
  if (strategy.type === 'OnDelete') return ready(`${readyReplicas}/${wanted} replicas ready`)
  const partition = num(record(strategy.rollingUpdate).partition, 0)
  const updated = num(status.updatedReplicas, 0)
  if (partition > 0) {
    if (updated < wanted - partition) return pending(`${updated} of ${wanted - partition} replicas updated`)
  } else if (status.updateRevision && status.currentRevision !== status.updateRevision) {
    return pending(`rolling update: ${updated} of ${wanted} replicas updated`)
  }
  return ready(`${readyReplicas}/${wanted} replicas ready`)
}

function daemonSetReadiness(d: Obj): Readiness {
  const status = record(d.status)
  const observed = generationPending(d)
  if (observed) return observed
  const desired = num(status.desiredNumberScheduled, 0)
  const scheduled = num(status.currentNumberScheduled, 0)
  const updated = num(status.updatedNumberScheduled, 0)
  const readyNumber = num(status.numberReady, 0)
  if (scheduled < desired) return pending(`${scheduled} of ${desired} pods scheduled`)
  if (record(record(d.spec).updateStrategy).type !== 'OnDelete' && updated < desired)
    return pending(`${updated} of ${desired} pods updated`)
  if (readyNumber < desired) return pending(`${readyNumber} of ${desired} pods ready`)
  return ready(`${readyNumber}/${desired} pods ready`)
}

function jobReadiness(j: Obj): Readiness {
  const failedCondition = findCondition(j, 'Failed')
  if (failedCondition?.status === 'True') return failed(`the Job failed${explain(failedCondition)}`)
  if (findCondition(j, 'Complete')?.status === 'True') return ready('complete')
  const spec = record(j.spec)
  if (spec.suspend === true) return pending('suspended')
  const status = record(j.status)
  const completions = num(spec.completions, 1)
  return pending(
    `${num(status.succeeded, 0)} of ${completions} completions succeeded${status.failed ? `, ${status.failed} failed` : ''}`,
  )
}

function crdReadiness(c: Obj): Readiness {
  const names = findCondition(c, 'NamesAccepted')
  if (names?.status === 'False') return failed(`its names were not accepted${explain(names)}`)
  return conditionReadiness(c, 'Established')
}

function podReadiness(p: Obj): Readiness {
  const status = record(p.status)
  if (status.phase === 'Succeeded') return ready('Succeeded')
  if (status.phase === 'Failed')
    return failed(
      `the pod failed${status.reason ? `: ${status.reason}` : ''}${status.message ? ` ${status.message}` : ''}`,
    )
  if (findCondition(p, 'Ready')?.status === 'True') return ready('Ready')
  const waiting = containerProblems(p)
  const scheduled = findCondition(p, 'PodScheduled')
  if (scheduled?.status === 'False') return pending(`not scheduled${explain(scheduled)}`)
  return pending(
    waiting.length ? waiting.join('; ') : `phase ${String(status.phase ?? 'unknown')}, not Ready`,
  )
}

/** "app: ImagePullBackOff (Back-off pulling image …)" for each container that is waiting or terminated badly. */
export function containerProblems(pod: Obj): string[] {
  const status = record(pod.status)
  const out: string[] = []
  for (const list of ['initContainerStatuses', 'containerStatuses']) {
    const statuses = status[list]
    if (!Array.isArray(statuses)) continue
    for (const s of statuses.filter(isPlainObject)) {
      const state = record(s.state)
      const waiting = record(state.waiting)
      const terminated = record(state.terminated)
      if (waiting.reason)
        out.push(
          `${String(s.name)}: ${String(waiting.reason)}${waiting.message ? ` (${String(waiting.message)})` : ''}`,
        )
      else if (terminated.reason && terminated.exitCode !== 0)
        out.push(`${String(s.name)}: ${String(terminated.reason)} (exit code ${String(terminated.exitCode)})`)
    }
  }
  return out
}

function generationPending(o: Obj): Readiness | undefined {
  const generation = num(record(o.metadata).generation, 0)
  const observed = num(record(o.status).observedGeneration, -1)
  if (generation > 0 && observed < generation)
    return pending(`waiting for the controller to see generation ${generation}`)
  return undefined
}

function explain(c: Condition): string {
  const parts = [c.reason, c.message].filter(Boolean)
  return parts.length ? ` (${parts.join(': ')})` : ''
}

function record(value: unknown): Obj {
  return isPlainObject(value) ? value : {}
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback
}
