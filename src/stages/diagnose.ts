import type { KubeClient } from './kube-client.js'
import { formatRef, isPlainObject, type KubeObject, type ObjectRef } from './objects.js'
import { type Condition, conditionsOf, evaluateReadiness, type Readiness } from './readiness.js'

/**
 * What a field engineer needs when an object does not become ready: its conditions, its newest events, and for a
 * workload the pods that are not ready, with their own events and the last lines of their logs (where the node can
 * serve logs). For a custom resource (an operator's ClusterPolicy, say), the workloads it owns (its operands: the
 * Deployments, StatefulSets and DaemonSets whose controller owner reference is that object) that are not ready get
 * the same diagnosis. Collecting never throws: a diagnosis that cannot be completed says less, not nothing.
 */
export interface EventLine {
  type: string
  reason: string
  message: string
  count: number
  /** ISO time of the last occurrence. */
  time?: string
}

export interface PodDiagnosis {
  name: string
  namespace: string
  phase: string
  reason: string
  events: EventLine[]
  /** Container → its last log lines. */
  logs: Record<string, string[]>
}

export interface Diagnosis {
  object: ObjectRef
  reason: string
  conditions: Condition[]
  events: EventLine[]
  pods: PodDiagnosis[]
  /** For a custom resource: the workloads it owns that are not ready, each diagnosed (without owned of its own). */
  owned?: Diagnosis[]
}

const EVENT_COUNT = 5
const LOG_LINES = 20
const MAX_PODS = 2
const MAX_OWNED = 5
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet']

export async function diagnose(
  client: KubeClient,
  ref: ObjectRef,
  object: KubeObject | undefined,
  readiness: Readiness,
): Promise<Diagnosis> {
  // The stage's own deadline (or the user's signal) has usually fired by now: these requests get a fresh budget.
  const signal = AbortSignal.timeout(15_000)
  const diagnosis: Diagnosis = {
    object: ref,
    reason: readiness.reason,
    conditions: conditionsOf(object),
    events: await eventsFor(client, ref, signal),
    pods: [],
  }
  if (!object) return diagnosis
  try {
    const pods = object.kind === 'Pod' ? [object] : await podsOf(client, object, signal)
    const troubled = pods.filter((p) => evaluateReadiness(p).state !== 'ready').slice(0, MAX_PODS)
    for (const pod of troubled) diagnosis.pods.push(await diagnosePod(client, pod, signal))
  } catch {}
  if (isCustomResource(ref)) {
    const owned = await notReadyOwned(client, object, signal)
    if (owned.length) diagnosis.owned = owned
  }
  return diagnosis
}

/** A kind of an API group the cluster does not build in: `group/version` with a dot in the group. */
function isCustomResource(ref: ObjectRef): boolean {
  const group = ref.apiVersion.includes('/') ? ref.apiVersion.split('/')[0]! : ''
  return group.includes('.') && !group.endsWith('.k8s.io')
}

/**
 * The workloads whose controller is `owner` and that are not ready, diagnosed. A namespaced owner's workloads are in
 * its namespace; a cluster-scoped owner's anywhere (an operator puts its operands in its own namespace).
 */
async function notReadyOwned(
  client: KubeClient,
  owner: KubeObject,
  signal: AbortSignal,
): Promise<Diagnosis[]> {
  const uid = owner.metadata.uid
  if (typeof uid !== 'string' || !uid) return []
  const found: Diagnosis[] = []
  for (const kind of WORKLOAD_KINDS) {
    let items: KubeObject[]
    try {
      items = await client.list(
        'apps/v1',
        kind,
        owner.metadata.namespace ? { namespace: owner.metadata.namespace } : {},
        signal,
      )
    } catch {
      continue
    }
    const owned = items
      .filter((item) => ownedBy(item, uid))
      .sort((a, b) =>
        `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
          `${b.metadata.namespace}/${b.metadata.name}`,
        ),
      )
    for (const item of owned) {
      const readiness = evaluateReadiness(item)
      if (readiness.state === 'ready' || found.length >= MAX_OWNED) continue
      const ref = {
        apiVersion: 'apps/v1',
        kind,
        name: item.metadata.name,
        ...(item.metadata.namespace ? { namespace: item.metadata.namespace } : {}),
      }
      found.push(await diagnose(client, ref, item, readiness))
    }
  }
  return found
}

function ownedBy(object: KubeObject, uid: string): boolean {
  const refs = object.metadata.ownerReferences
  return Array.isArray(refs) && refs.some((r) => isPlainObject(r) && r.uid === uid && r.controller === true)
}

async function eventsFor(client: KubeClient, ref: ObjectRef, signal: AbortSignal): Promise<EventLine[]> {
  try {
    const events = await client.list(
      'v1',
      'Event',
      {
        namespace: ref.namespace,
        fieldSelector: `involvedObject.name=${ref.name},involvedObject.kind=${ref.kind}`,
      },
      signal,
    )
    return events
      .map(toEventLine)
      .sort((a, b) => (b.time ?? '').localeCompare(a.time ?? ''))
      .slice(0, EVENT_COUNT)
  } catch {
    return []
  }
}

function toEventLine(event: Record<string, unknown>): EventLine {
  const series = isPlainObject(event.series) ? event.series : {}
  const metadata = isPlainObject(event.metadata) ? event.metadata : {}
  const time = [
    series.lastObservedTime,
    event.lastTimestamp,
    event.eventTime,
    event.firstTimestamp,
    metadata.creationTimestamp,
  ].find((t) => typeof t === 'string' && t) as string | undefined
  return {
    type: String(event.type ?? 'Normal'),
    reason: String(event.reason ?? ''),
    message: String(event.message ?? '').trim(),
    count:
      typeof event.count === 'number' ? event.count : typeof series.count === 'number' ? series.count : 1,
    ...(time ? { time } : {}),
  }
}

/** The pods a workload selects (spec.selector), newest first. */
async function podsOf(client: KubeClient, object: KubeObject, signal: AbortSignal): Promise<KubeObject[]> {
  if (!['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(object.kind)) return []
  const spec = isPlainObject(object.spec) ? object.spec : {}
  const selector = labelSelector(spec.selector)
  if (!selector) return []
  const pods = await client.list(
    'v1',
    'Pod',
    { namespace: object.metadata.namespace, labelSelector: selector },
    signal,
  )
  const created = (p: KubeObject) => String(p.metadata.creationTimestamp ?? '')
  return pods.sort((a, b) => created(b).localeCompare(created(a)))
}

/** A LabelSelector as the text form the API takes: "app=web,tier in (a,b),!legacy". */
export function labelSelector(selector: unknown): string | undefined {
  if (!isPlainObject(selector)) return undefined
  const parts: string[] = []
  if (isPlainObject(selector.matchLabels))
    for (const [k, v] of Object.entries(selector.matchLabels)) parts.push(`${k}=${String(v)}`)
  if (Array.isArray(selector.matchExpressions)) {
    for (const e of selector.matchExpressions.filter(isPlainObject)) {
      const values = Array.isArray(e.values) ? e.values.map(String).join(',') : ''
      if (e.operator === 'In') parts.push(`${String(e.key)} in (${values})`)
      else if (e.operator === 'NotIn') parts.push(`${String(e.key)} notin (${values})`)
      else if (e.operator === 'Exists') parts.push(String(e.key))
      else if (e.operator === 'DoesNotExist') parts.push(`!${String(e.key)}`)
    }
  }
  return parts.length ? parts.join(',') : undefined
}

async function diagnosePod(client: KubeClient, pod: KubeObject, signal: AbortSignal): Promise<PodDiagnosis> {
  const namespace = pod.metadata.namespace ?? 'default'
  const status = isPlainObject(pod.status) ? pod.status : {}
  const ref = { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.metadata.name }
  const logs: Record<string, string[]> = {}
  for (const container of containersWorthALog(pod)) {
    const text = await client
      .podLog(namespace, pod.metadata.name, { container, tailLines: LOG_LINES }, signal)
      .catch(() => undefined)
    const lines = text?.split('\n').filter((l) => l.length > 0)
    if (lines?.length) logs[container] = lines.slice(-LOG_LINES)
  }
  return {
    name: pod.metadata.name,
    namespace,
    phase: String(status.phase ?? 'Unknown'),
    reason: evaluateReadiness(pod).reason,
    events: await eventsFor(client, ref, signal),
    logs,
  }
}

/** Containers that are waiting, terminated or restarted; else the first one. At most two. */
function containersWorthALog(pod: KubeObject): string[] {
  const status = isPlainObject(pod.status) ? pod.status : {}
  const names: string[] = []
  for (const list of ['initContainerStatuses', 'containerStatuses']) {
    const statuses = status[list]
    if (!Array.isArray(statuses)) continue
    for (const s of statuses.filter(isPlainObject)) {
      const state = isPlainObject(s.state) ? s.state : {}
      if (state.waiting || state.terminated || (typeof s.restartCount === 'number' && s.restartCount > 0))
        names.push(String(s.name))
    }
  }
  if (names.length === 0) {
    const spec = isPlainObject(pod.spec) ? pod.spec : {}
    const first =
      Array.isArray(spec.containers) && isPlainObject(spec.containers[0])
        ? spec.containers[0].name
        : undefined
    if (typeof first === 'string') names.push(first)
  }
  return names.slice(0, 2)
}

/** The diagnosis as indented lines for the error message (owned workloads indented under their owner). */
export function formatDiagnosis(d: Diagnosis): string {
  const lines = [`${formatRef(d.object)}: ${d.reason}`]
  if (d.conditions.length) {
    lines.push('  conditions:')
    for (const c of d.conditions) lines.push(`    ${formatCondition(c)}`)
  }
  if (d.events.length) {
    lines.push('  events (newest first):')
    for (const e of d.events) lines.push(`    ${formatEvent(e)}`)
  } else {
    lines.push('  events: none')
  }
  for (const pod of d.pods) {
    lines.push(`  pod ${pod.namespace}/${pod.name} (${pod.phase}): ${pod.reason}`)
    for (const e of pod.events) lines.push(`    ${formatEvent(e)}`)
    for (const [container, log] of Object.entries(pod.logs)) {
      lines.push(`    log of ${container} (last ${log.length} lines):`)
      for (const line of log) lines.push(`      ${line}`)
    }
  }
  if (d.owned?.length) {
    lines.push(`  not ready among what it owns (${d.owned.map((o) => formatRef(o.object)).join(', ')}):`)
    for (const o of d.owned) for (const line of formatDiagnosis(o).split('\n')) lines.push(`    ${line}`)
  }
  return lines.join('\n')
}

export function formatCondition(c: Condition): string {
  const detail = [c.reason, c.message].filter(Boolean).join(': ')
  return `${c.type}=${c.status}${detail ? ` (${detail})` : ''}`
}

function formatEvent(e: EventLine): string {
  return `${e.type} ${e.reason}: ${e.message}${e.count > 1 ? ` (x${e.count})` : ''}${e.time ? ` at ${e.time}` : ''}`
}
