import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import type { HelmRunner } from '../helm/helm-runner.js'
import { clusterError, type KubeClient } from './kube-client.js'
import { formatRef, type ObjectRef, type ReleaseRef, refKey, refOf } from './objects.js'
import { waitUntilGone } from './wait.js'

/**
 * Removing what an install applied: Helm releases uninstalled and objects deleted, then waited for until they are
 * gone. Both the prune of an upgrade (what the new bundle no longer ships) and uninstall use it.
 */

/** How long a prune or an uninstall waits for deleted objects to go, unless told otherwise. */
export const DEFAULT_DELETE_TIMEOUT_MS = 5 * 60_000

/**
 * Uninstalls releases (newest first) and deletes objects (in reverse apply order), then waits until all are gone.
 * `keep` lists keys that must survive (objects the current bundle owns).
 */
export async function removeAll(
  client: KubeClient,
  helm: HelmRunner,
  objects: ObjectRef[],
  releases: ReleaseRef[],
  o: {
    task: Task
    signal?: AbortSignal
    timeoutMs: number
    what: string
    keep?: Set<string>
    /**
     * Namespaces are deleted but not waited for here: they go when the namespace controller has swept them (several
     * seconds each), so the caller waits for all of them at once at the end.
     */
    deferNamespaces?: ObjectRef[]
  },
): Promise<{ objects: ObjectRef[]; releases: ReleaseRef[] }> {
  const gone: ObjectRef[] = []
  const removedReleases: ReleaseRef[] = []
  let done = 0
  for (const release of [...releases].reverse()) {
    const sub = o.task.child('remove.release', `Uninstall release ${release.namespace}/${release.name}`, {
      data: { namespace: release.namespace, release: release.name },
    })
    try {
      const manifest = (await helm.manifest(release.name, release.namespace, o.signal)) ?? []
      const existed = await helm.uninstall(release.name, release.namespace, o.signal)
      for (const obj of manifest) {
        const ref = refOf(obj)
        if (!ref.namespace && (await client.resourceOf(ref.apiVersion, ref.kind, o.signal))?.namespaced)
          ref.namespace = release.namespace
        if (!o.keep?.has(refKey(ref))) gone.push(ref)
      }
      if (existed) removedReleases.push(release)
      sub.end(existed ? 'done' : 'skipped', existed ? undefined : 'not installed')
    } catch (error) {
      sub.end('failed', error instanceof Error ? error.message.split('\n')[0] : String(error))
      throw error instanceof AirgapError
        ? error
        : clusterError(error, `uninstalling ${release.namespace}/${release.name}`, client.server)
    }
    o.task.progress(++done, objects.length + releases.length, 'items')
  }
  const deleted: ObjectRef[] = []
  for (const ref of [...objects].reverse()) {
    try {
      if (await client.delete(ref, o.signal)) deleted.push(ref)
    } catch (error) {
      throw clusterError(error, `deleting ${formatRef(ref)}`, client.server)
    }
    if (o.deferNamespaces && ref.kind === 'Namespace' && ref.apiVersion === 'v1') o.deferNamespaces.push(ref)
    else gone.push(ref)
    o.task.progress(++done, objects.length + releases.length, 'items')
  }
  const wait = o.task.child('remove.wait', `Wait until ${gone.length} objects are gone`, {
    data: { objects: gone.length },
  })
  try {
    await waitUntilGone(gone, {
      client,
      deadline: Date.now() + o.timeoutMs,
      timeoutMs: o.timeoutMs,
      task: wait,
      signal: o.signal,
      what: o.what,
    })
    wait.end('done')
  } catch (error) {
    wait.end('failed', error instanceof Error ? error.message.split('\n')[0] : String(error))
    throw error
  }
  return { objects: deleted, releases: removedReleases }
}
