import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { HelmRunner } from '../helm/helm-runner.js'
import { GENERATED_SECRET } from './generated-values.js'
import { InstallLock } from './install-lock.js'
import { clusterError, KubeClient } from './kube-client.js'
import { formatRef, type ObjectRef, type ReleaseRef } from './objects.js'
import { DEFAULT_DELETE_TIMEOUT_MS, removeAll } from './remove-objects.js'
import { DEFAULT_INSTALL_NAMESPACE, STATE_CONFIGMAP, StateStore } from './state.js'
import { waitUntilGone } from './wait.js'

/**
 * Removes what the recorded install applied, stage by stage in reverse order (releases uninstalled, objects deleted
 * in reverse apply order, waiting until they are gone), then the state ConfigMap (and the installer's namespace if
 * the installer created it). Works from the state alone: the bundle is not needed. A stopped uninstall can be rerun.
 */

export interface UninstallStagesOptions {
  kubeconfig: string
  context?: string
  helm: string
  namespace?: string
  /** How long to wait for each stage's objects to go (default 5 min). */
  timeoutMs?: number
  /** Also remove the generated site values (passwords), which are kept by default for the data volumes. */
  purge?: boolean
  /** How long the install lock's Lease lasts, in seconds (default 60); tests shorten it to lose the lock quickly. */
  lockLeaseSeconds?: number
  sink: EventSink
  signal?: AbortSignal
}

export interface UninstallResult {
  /** The bundle that was installed; undefined when nothing was. */
  bundle?: { name: string; version: string; digest: string }
  namespace: string
  nothingToDo: boolean
  removed: { objects: ObjectRef[]; releases: ReleaseRef[] }
  /** What was kept on purpose (the generated site values, unless purge). */
  kept?: ObjectRef[]
  durationMs: number
}

/** Uninstalls what the recorded install applied, as the comment at the top says. */
export async function uninstallStages(options: UninstallStagesOptions): Promise<UninstallResult> {
  const started = Date.now()
  const namespace = options.namespace ?? DEFAULT_INSTALL_NAMESPACE
  const client = KubeClient.load({ kubeconfig: options.kubeconfig, context: options.context })
  const store = new StateStore(client, namespace)
  const seen = await store.read(options.signal)
  const result: UninstallResult = {
    namespace,
    nothingToDo: true,
    removed: { objects: [], releases: [] },
    durationMs: 0,
  }
  const nothingToDo = (): UninstallResult => {
    options.sink.emit({
      type: 'log',
      level: 'info',
      code: 'I_NOTHING_TO_DO',
      message: `No install state in ${namespace}/${STATE_CONFIGMAP}: nothing to uninstall${result.removed.objects.length ? ` (removed the generated passwords ${namespace}/${GENERATED_SECRET})` : ''}.`,
      data: { namespace },
    })
    result.durationMs = Date.now() - started
    return result
  }
  // Nothing installed and nothing to purge: no lock to take (and no namespace to take it in).
  if (!seen && !(options.purge && (await namespaceExists(client, namespace, options.signal))))
    return nothingToDo()
  const lock = await InstallLock.acquire(client, namespace, {
    operation: seen ? `uninstall ${seen.bundle.name} ${seen.bundle.version}` : 'uninstall --purge',
    sink: options.sink,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.lockLeaseSeconds ? { leaseSeconds: options.lockLeaseSeconds } : {}),
    lostWording: { stopped: 'removing', rerun: 'run the uninstall again to continue' },
  })
  // Losing the lock (another holder took the Lease) stops everything still running: nothing more is removed, and the
  // state keeps what is left, for the next uninstall.
  const held = options.signal ? AbortSignal.any([options.signal, lock.lost]) : lock.lost
  // Read again under the lock: an install that held it may have changed the state since the first read.
  const state = await store.read(held).catch(async (error: unknown) => {
    await lock.release()
    throw error
  })
  if (!state) {
    try {
      // Nothing installed; what an earlier uninstall kept (the generated passwords) goes with --purge.
      const { removed } = options.purge
        ? await store.remove(undefined, { purge: true, signal: held })
        : { removed: [] }
      result.removed.objects.push(...removed.filter((r) => r.kind === 'Secret'))
      return nothingToDo()
    } finally {
      await lock.release()
    }
  }
  result.nothingToDo = false
  result.bundle = state.bundle
  const root = new Task(options.sink, 'uninstall', `Uninstall ${state.bundle.name} ${state.bundle.version}`, {
    data: { name: state.bundle.name, version: state.bundle.version },
  })
  const workDir = await mkdtemp(join(tmpdir(), 'astrago-uninstall-'))
  try {
    const helm = new HelmRunner({
      helm: options.helm,
      kubeconfig: options.kubeconfig,
      context: options.context,
      workDir,
    })
    const timeoutMs = options.timeoutMs ?? DEFAULT_DELETE_TIMEOUT_MS
    const groups: { name: string; objects: ObjectRef[]; releases: ReleaseRef[]; clear: () => void }[] = [
      {
        name: 'leftovers of an older bundle',
        ...state.prune,
        clear: () => {
          state.prune = { objects: [], releases: [] }
        },
      },
      ...[...state.stages].reverse().map((stage) => ({
        name: `stage ${stage.name}`,
        objects: stage.objects,
        releases: stage.releases,
        clear: () => {
          Object.assign(stage, { status: 'pending', objects: [], releases: [] })
          delete stage.startedAt
          delete stage.endedAt
          delete stage.error
        },
      })),
    ]
    const namespaces: ObjectRef[] = []
    for (const group of groups) {
      if (!group.objects.length && !group.releases.length) continue
      held.throwIfAborted()
      const task = root.child('uninstall.group', `Remove ${group.name}`, {
        total: group.objects.length + group.releases.length,
        unit: 'items',
        data: { group: group.name },
      })
      const removed = await task.run(
        () =>
          removeAll(client, helm, group.objects, group.releases, {
            task,
            signal: held,
            timeoutMs,
            what: `Removing ${group.name}`,
            deferNamespaces: namespaces,
          }),
        (r) => `${r.objects.length} objects, ${r.releases.length} releases removed`,
      )
      result.removed.objects.push(...removed.objects)
      result.removed.releases.push(...removed.releases)
      group.clear()
      state.status = 'uninstalling'
      await store.write(state, held)
    }
    held.throwIfAborted()
    // The installer's namespace, which holds the lock's Lease, may go with the state: the lease is no longer renewed,
    // so its going is not a lost lock. Nothing is changed after this; what was deleted is only waited for.
    if (state.namespaceCreated) lock.letGo()
    const { removed: stateObjects, kept } = await store.remove(state, {
      ...(options.purge ? { purge: true } : {}),
      signal: held,
    })
    result.kept = kept
    for (const ref of kept)
      options.sink.emit({
        type: 'log',
        level: 'info',
        code: 'I_KEPT_GENERATED',
        message: `Kept ${formatRef(ref)}: the passwords generated for this site, which data volumes that outlive the install may still use; a reinstall reuses them. uninstall --purge removes them.`,
        data: { ref },
      })
    await waitUntilGone([...namespaces, ...stateObjects], {
      client,
      deadline: Date.now() + timeoutMs,
      timeoutMs,
      task: root,
      signal: held,
      what: 'Removing the namespaces and the install state',
    })
    root.end(
      'done',
      `${result.removed.objects.length} objects, ${result.removed.releases.length} releases removed`,
    )
    result.durationMs = Date.now() - started
    return result
  } catch (error) {
    const lost = lock.lost.aborted && !options.signal?.aborted ? (lock.lost.reason as AirgapError) : undefined
    const e = lost
      ? lost
      : options.signal?.aborted
        ? new AirgapError('E_INTERRUPTED', 'Uninstall interrupted; run it again to continue.', {
            cause: error,
          })
        : error
    root.end('failed', e instanceof Error ? e.message.split('\n')[0] : String(e))
    throw e
  } finally {
    await lock.release()
    await rm(workDir, { recursive: true, force: true })
  }
}

async function namespaceExists(client: KubeClient, name: string, signal?: AbortSignal): Promise<boolean> {
  try {
    return (await client.get({ apiVersion: 'v1', kind: 'Namespace', name }, signal)) !== undefined
  } catch (error) {
    throw clusterError(error, `reading the namespace ${name}`, client.server)
  }
}
