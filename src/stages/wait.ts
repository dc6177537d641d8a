import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import { sleep } from '../net/retry.js'
import { diagnose, formatDiagnosis } from './diagnose.js'
import { parseJsonPath, type Segment } from './jsonpath.js'
import { clusterError, KubeApiError, type KubeClient } from './kube-client.js'
import type { ReadinessRule } from './load-stages.js'
import { formatRef, type KubeObject, type ObjectRef } from './objects.js'
import { evaluateReadiness, evaluateRule, type Readiness } from './readiness.js'

/**
 * Waits until objects are ready (their kind's rule, or a custom JSONPath rule), polling with backoff: 250 ms at
 * first, growing to 4 s, so quick objects are seen quickly and slow ones do not hammer the API server. Stops at the
 * first object that failed for good, or at the deadline, with an E_CLUSTER error that carries the object's
 * conditions, newest events and, for workloads, the failing pods' events and last log lines (for a custom resource,
 * also those of the workloads it owns that are not ready: an operator's operands).
 */
export interface WaitTarget {
  ref: ObjectRef
  /** A custom rule; without one the kind's default rule applies. */
  rule?: ReadinessRule
}

export interface WaitOptions {
  client: KubeClient
  stage: string
  /** Epoch milliseconds. */
  deadline: number
  /** The stage's timeout, for messages. */
  timeoutMs: number
  /** Each target gets a subtask of this task. */
  task: Task
  /** The user's signal (Ctrl-C). */
  signal?: AbortSignal
  /** Title prefix of the subtasks (default "Wait for"). */
  verb?: string
}

interface Waiting {
  target: WaitTarget
  parsed?: Segment[]
  task: Task
  object?: KubeObject
  last: Readiness
}

const CONCURRENCY = 8

export async function waitForReady(targets: WaitTarget[], options: WaitOptions): Promise<void> {
  const { client, signal } = options
  let pending: Waiting[] = targets.map((target) => ({
    target,
    parsed: target.rule ? parseJsonPath(target.rule.jsonPath) : undefined,
    task: options.task.child('stage.wait', `${options.verb ?? 'Wait for'} ${describeTarget(target)}`, {
      data: waitData(target),
    }),
    last: { state: 'pending', reason: 'not checked yet' },
  }))
  let delay = 250
  try {
    for (;;) {
      await forEachLimited(pending, CONCURRENCY, async (w) => {
        try {
          w.object = await client.get(w.target.ref, signal)
          w.last = w.target.rule
            ? evaluateRule(w.object, w.target.rule, w.parsed)
            : evaluateReadiness(w.object)
        } catch (error) {
          if (signal?.aborted) throw error
          if (error instanceof KubeApiError && error.transient)
            w.last = { state: 'pending', reason: `cannot read it: ${error.message}` }
          else throw clusterError(error, `reading ${formatRef(w.target.ref)}`, client.server)
        }
      })
      for (const w of pending) if (w.last.state === 'ready') w.task.end('done', w.last.reason)
      const broken = pending.find((w) => w.last.state === 'failed')
      if (broken) throw await readinessError(broken, pending, options, 'failed')
      pending = pending.filter((w) => w.last.state !== 'ready')
      if (pending.length === 0) return
      const left = options.deadline - Date.now()
      if (left <= 0) throw await readinessError(pending[0]!, pending, options, 'timeout')
      await sleep(Math.min(delay, left), signal)
      delay = Math.min(Math.round(delay * 1.6), 4000)
    }
  } catch (error) {
    for (const w of pending) w.task.end('failed', w.last.reason)
    throw error
  }
}

/** Waits until every object is gone (after a delete), with the same backoff and an E_CLUSTER error at the deadline. */
export async function waitUntilGone(
  refs: ObjectRef[],
  options: Omit<WaitOptions, 'stage'> & { what: string },
): Promise<void> {
  const { client, signal } = options
  let remaining = refs.map((ref) => ({ ref, object: undefined as KubeObject | undefined }))
  let delay = 250
  for (;;) {
    await forEachLimited(remaining, CONCURRENCY, async (r) => {
      try {
        r.object = await client.get(r.ref, signal)
      } catch (error) {
        if (signal?.aborted || !(error instanceof KubeApiError && error.transient)) throw error
      }
    })
    remaining = remaining.filter((r) => r.object !== undefined)
    if (remaining.length === 0) return
    const left = options.deadline - Date.now()
    if (left <= 0) {
      const lines = remaining.slice(0, 10).map((r) => {
        const finalizers = (r.object?.metadata.finalizers as string[] | undefined) ?? []
        return `  ${formatRef(r.ref)}${finalizers.length ? ` (finalizers: ${finalizers.join(', ')})` : ''}`
      })
      throw new AirgapError(
        'E_CLUSTER',
        `${options.what}: ${remaining.length} object(s) still exist after ${Math.round(options.timeoutMs / 1000)}s:\n${lines.join('\n')}`,
        {
          hints: [
            'An object held by a finalizer waits for its controller; check that the controller still runs.',
          ],
          data: { remaining: remaining.map((r) => r.ref) },
        },
      )
    }
    await sleep(Math.min(delay, left), signal)
    delay = Math.min(Math.round(delay * 1.6), 4000)
  }
}

/** The data of a wait's task: the object, and its custom rule if it has one. */
function waitData(target: WaitTarget): { ref: ObjectRef; rule?: { jsonPath: string; equals?: string } } {
  const rule = target.rule
  return rule
    ? { ref: target.ref, rule: { jsonPath: rule.jsonPath, equals: rule.equals } }
    : { ref: target.ref }
}

export function describeTarget(target: WaitTarget): string {
  const rule = target.rule
  if (!rule) return formatRef(target.ref)
  return `${formatRef(target.ref)}: ${rule.jsonPath}${rule.equals !== undefined ? ` = ${rule.equals}` : ''}`
}

async function readinessError(
  culprit: Waiting,
  pending: Waiting[],
  options: WaitOptions,
  kind: 'failed' | 'timeout',
): Promise<AirgapError> {
  const diagnosis = await diagnose(options.client, culprit.target.ref, culprit.object, culprit.last)
  const others = pending.filter((w) => w !== culprit)
  const seconds = Math.round(options.timeoutMs / 1000)
  const headline =
    kind === 'failed'
      ? `Stage ${options.stage}: ${formatRef(culprit.target.ref)} failed.`
      : `Stage ${options.stage}: ${formatRef(culprit.target.ref)} did not become ready within the stage timeout (${seconds}s).`
  const tail = others.length
    ? `\nAlso not ready: ${others
        .slice(0, 10)
        .map((w) => `${describeTarget(w.target)} (${w.last.reason})`)
        .join('; ')}${others.length > 10 ? `; and ${others.length - 10} more` : ''}`
    : ''
  const ref = culprit.target.ref
  return new AirgapError('E_CLUSTER', `${headline}\n${formatDiagnosis(diagnosis)}${tail}`, {
    hints: [
      'Fix the cause shown above (the events and logs usually name it), then run the install again: it resumes at this stage.',
      `kubectl describe ${ref.kind.toLowerCase()} ${ref.name}${ref.namespace ? ` -n ${ref.namespace}` : ''}`,
      ...(kind === 'timeout'
        ? ['A stage that only needs longer can say so: timeout in its stage.yaml.']
        : []),
    ],
    data: {
      stage: options.stage,
      object: ref,
      rule: culprit.target.rule
        ? { jsonPath: culprit.target.rule.jsonPath, equals: culprit.target.rule.equals }
        : undefined,
      reason: culprit.last.reason,
      conditions: diagnosis.conditions,
      events: diagnosis.events,
      pods: diagnosis.pods,
      ...(diagnosis.owned ? { owned: diagnosis.owned } : {}),
      notReady: pending.map((w) => ({ ...w.target.ref, reason: w.last.reason })),
    },
  })
}

/** Runs fn over items with at most `limit` at a time; the first error wins (the others still finish). */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async () => {
    while (next < items.length && !failure) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failure) throw failure.error
}
