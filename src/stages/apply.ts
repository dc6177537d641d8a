import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import { sleep } from '../net/retry.js'
import { orderForApply } from './apply-order.js'
import { clusterError, KubeApiError, type KubeClient } from './kube-client.js'
import { formatRef, groupOf, type KubeObject, refOf } from './objects.js'
import type { PlannedObject } from './plan-stages.js'
import { waitForReady } from './wait.js'

/**
 * Server-side apply of a stage's plain manifests, in phases: Namespaces, then CustomResourceDefinitions (waiting
 * until they are Established, so custom resources of the same stage can follow), then everything else in kind order.
 * Failures the cluster may get over by itself (unreachable for a moment, 429, 5xx such as a webhook whose service is
 * still starting, a custom resource kind not yet in discovery) are retried with backoff until the stage deadline;
 * a refusal (invalid object, forbidden) fails at once, naming the object and the bundle member it came from.
 */
export interface ApplyContext {
  client: KubeClient
  stage: string
  deadline: number
  timeoutMs: number
  task: Task
  /** Aborted by the user or the stage deadline. */
  signal: AbortSignal
  /** The user's signal alone (waits handle the deadline themselves, with diagnostics). */
  userSignal?: AbortSignal
}

/**
 * Fixes each object's namespace by what the cluster says about its kind: cluster-scoped objects lose a namespace,
 * namespaced ones keep theirs (the plan gave every namespaced object one). Kinds the cluster does not serve yet (a
 * CRD of this very stage) keep the plan's guess and are checked again when applied.
 */
export async function resolveScopes(
  client: KubeClient,
  objects: PlannedObject[],
  signal?: AbortSignal,
): Promise<PlannedObject[]> {
  const scopes = new Map<string, boolean | undefined>()
  const out: PlannedObject[] = []
  for (const planned of objects) {
    const { apiVersion, kind } = planned.object
    const key = `${apiVersion}/${kind}`
    if (!scopes.has(key)) {
      try {
        scopes.set(key, (await client.resourceOf(apiVersion, kind, signal))?.namespaced)
      } catch (error) {
        throw clusterError(error, `looking up the kind ${kind} (${apiVersion})`, client.server)
      }
    }
    const namespaced = scopes.get(key)
    if (namespaced === false && planned.object.metadata.namespace) {
      const object = structuredClone(planned.object)
      delete object.metadata.namespace
      out.push({ ...planned, object })
    } else {
      out.push(planned)
    }
  }
  return out
}

/** Applies the objects (already in apply order) phase by phase; returns the objects as the cluster stored them. */
export async function applyObjects(objects: PlannedObject[], ctx: ApplyContext): Promise<KubeObject[]> {
  const phases = orderForApply(objects, (o) => o.object)
  const stored: KubeObject[] = []
  for (const planned of phases.namespaces) stored.push(await applyOne(planned, ctx))
  for (const planned of phases.crds) stored.push(await applyOne(planned, ctx))
  if (phases.crds.length) {
    await waitForReady(
      phases.crds.map((c) => ({ ref: refOf(c.object) })),
      { ...ctx, signal: ctx.userSignal, verb: 'Wait until established:' },
    )
  }
  for (const planned of phases.rest) stored.push(await applyOne(planned, ctx))
  return stored
}

export async function applyOne(planned: PlannedObject, ctx: ApplyContext): Promise<KubeObject> {
  const ref = refOf(planned.object)
  const task = ctx.task.child('stage.object', `Apply ${formatRef(ref)}`, { data: { ref } })
  let delay = 500
  let lastProblem: string | undefined
  for (;;) {
    try {
      const object = await applyWithScope(planned.object, ctx)
      task.end('done', lastProblem ? `after retrying (${lastProblem})` : undefined)
      return object
    } catch (error) {
      if (ctx.signal.aborted) {
        task.end('failed', 'interrupted')
        throw error
      }
      const retryable = isRetryable(error)
      const left = ctx.deadline - Date.now()
      if (!retryable || left <= 0) {
        const reason = error instanceof Error ? error.message : String(error)
        task.end('failed', reason)
        throw applyError(error, planned, ctx, left <= 0 && retryable)
      }
      lastProblem = error.message
      // The deadline is checked above, so a retry that runs out of time reports the last problem, not "timeout".
      await sleep(Math.min(delay, left), ctx.userSignal)
      delay = Math.min(delay * 2, 5000)
    }
  }
}

/**
 * Worth retrying until the deadline: the API server unreachable or overloaded, a webhook that cannot be called yet
 * (500), a kind not yet in discovery. Not: a 500 for an object that does not fit its schema ("failed to create typed
 * patch object", the server-side apply error for an unknown field), which no wait can fix.
 */
function isRetryable(error: unknown): error is KubeApiError {
  if (!(error instanceof KubeApiError)) return false
  if (error.reason === 'UnknownKind') return true
  if (!error.transient) return false
  return !/failed to create typed patch object|field not declared in schema/.test(error.message)
}

async function applyWithScope(object: KubeObject, ctx: ApplyContext): Promise<KubeObject> {
  const resource = await ctx.client.resourceOf(object.apiVersion, object.kind, ctx.signal)
  if (!resource) {
    throw new KubeApiError(
      404,
      'UnknownKind',
      `the cluster does not serve ${object.kind} in ${object.apiVersion} (its CustomResourceDefinition must be installed by this or an earlier stage)`,
    )
  }
  let body = object
  if (!resource.namespaced && object.metadata.namespace) {
    body = structuredClone(object)
    delete body.metadata.namespace
  }
  return await ctx.client.apply(body, ctx.signal)
}

function applyError(
  error: unknown,
  planned: PlannedObject,
  ctx: ApplyContext,
  timedOut: boolean,
): AirgapError {
  const ref = refOf(planned.object)
  const what = `${formatRef(ref)} (${groupOf(ref.apiVersion) || 'core'}, from ${planned.source})`
  if (error instanceof KubeApiError && error.status !== 401) {
    const detail = error.message.replace(/^applying: /, '')
    return new AirgapError(
      'E_CLUSTER',
      timedOut
        ? `Stage ${ctx.stage}: ${what} could not be applied within the stage timeout: ${detail}`
        : `Stage ${ctx.stage}: the cluster refused ${what}: ${detail}`,
      {
        cause: error,
        hints:
          error.status === 403
            ? ['The kubeconfig user may not create or patch this kind; see the preflight report.']
            : error.status === 422 || error.status === 400
              ? [`Fix ${planned.source} in the stage folder and build the bundle again.`]
              : ['Run the install again once the cluster is healthy: it resumes at this stage.'],
        data: {
          stage: ctx.stage,
          object: ref,
          source: planned.source,
          status: error.status,
          reason: error.reason,
        },
      },
    )
  }
  return clusterError(error, `applying ${what}`, ctx.client.server)
}
