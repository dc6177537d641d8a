import { mkdir, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { formatBytes } from '../events/format.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import type { BundleLock } from './bundle-lock.js'
import { openPartialBundle, removeVolumes } from './open-partial-bundle.js'
import { planLayout } from './plan-layout.js'
import { volumePaths } from './volumes.js'
import { writeBundleFile } from './write-bundle-file.js'

/**
 * The second half of `bundle`: a lock in, the bundle file out. Plan the tar layout, open (or resume, see
 * open-partial-bundle.ts) `<output>.partial` and its journal, fetch every remote member into its planned place, check
 * what can only be checked once it is there, then rename the finished file into place and drop the journal.
 */
export interface WriteBundleOptions {
  /** The bundle file, an absolute path; with splitSize, the base name of its volumes. */
  output: string
  /** Split into volumes of at most this many bytes (name.tar.000, .001, …). */
  splitSize?: number
  /** Parallel downloads. */
  concurrency?: number
  sink: EventSink
  signal?: AbortSignal
}

export interface WrittenBundle {
  /** The bundle file, or its volumes in order. */
  paths: string[]
  size: number
  /** Members under oci/blobs/. */
  blobs: number
  /** Bytes downloaded in this run. */
  fetchedBytes: number
  /** Bytes an interrupted earlier run had completed. */
  reusedBytes: number
  resumed: boolean
}

export async function writeBundle(
  lock: BundleLock,
  options: WriteBundleOptions,
  root: Task,
): Promise<WrittenBundle> {
  const { output, sink, signal } = options
  const concurrency = options.concurrency ?? 8
  const plan = planLayout(lock.members)
  await mkdir(dirname(output), { recursive: true })
  const { volumes, journal, resumed } = await openPartialBundle(output, plan, options.splitSize, sink)
  let written: Awaited<ReturnType<typeof writeBundleFile>>
  try {
    const fetchTask = root.child('bundle.fetch', 'Fetch blobs and files', {
      total: plan.members.filter((m) => m.content.kind === 'remote').reduce((a, m) => a + m.size, 0),
      unit: 'bytes',
    })
    written = await fetchTask.run(
      (task) => writeBundleFile({ plan, volumes, journal, concurrency, task, signal }),
      (w) =>
        `${formatBytes(w.fetchedBytes)} downloaded${w.reusedBytes ? `, ${formatBytes(w.reusedBytes)} kept from the earlier run` : ''}`,
    )
    await volumes.sync()
    // rpm sources that sign their packages rather than their metadata: each package's signature, now it is here.
    for (const check of lock.signatureChecks) {
      await root
        .child('bundle.signatures', `Check the package signatures of ${check.folder}`, {
          total: check.packages.length,
          unit: 'items',
          data: { folder: check.folder },
        })
        .run(
          async (task) =>
            (await import('./check-package-signatures.js')).checkPackageSignatures(
              plan,
              volumes,
              check,
              task,
            ),
          () => `${check.packages.length} packages signed by the source's keys`,
        )
    }
  } finally {
    await volumes.close()
  }
  const finalPaths = options.splitSize ? volumePaths(output, volumes.paths.length) : [output]
  await removeVolumes(output)
  for (let i = 0; i < volumes.paths.length; i++) await rename(volumes.paths[i]!, finalPaths[i]!)
  await journal.remove()

  return {
    paths: finalPaths,
    size: plan.size,
    blobs: plan.members.filter((m) => m.path.startsWith('oci/blobs/')).length,
    fetchedBytes: written.fetchedBytes,
    reusedBytes: written.reusedBytes,
    resumed,
  }
}
