import { existsSync } from 'node:fs'
import { mkdir, rename, rm, stat, statfs } from 'node:fs/promises'
import { dirname } from 'node:path'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import type { BundleLock } from './bundle-lock.js'
import { checkPackageSignatures } from './check-package-signatures.js'
import { Journal } from './journal.js'
import { planLayout } from './plan-layout.js'
import { VolumeSet, volumePaths } from './volumes.js'
import { writeBundleFile } from './write-bundle-file.js'

/**
 * The second half of `bundle`: a lock in, the bundle file out. Plan the tar layout, check the disk, open (or resume)
 * `<output>.partial` and its journal, fetch every remote member into its planned place, check what can only be checked
 * once it is there, then rename the finished file into place and drop the journal.
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
  const partialBase = `${output}.partial`
  const journalPath = `${output}.journal`
  await mkdir(dirname(output), { recursive: true })
  // Space first, before anything is written; an interrupted run's partial file already holds some of it.
  await checkDiskSpace(
    dirname(output),
    plan.size,
    existsSync(journalPath) ? await existingSize(partialBase) : 0,
  )
  const { journal, resumed } = await Journal.open(journalPath, plan.digest)
  if (!resumed) await removeVolumes(partialBase)
  if (resumed)
    sink.emit({
      type: 'log',
      level: 'info',
      code: 'I_RESUME',
      message: `Resuming the interrupted bundle ${output}`,
    })

  const volumes = await VolumeSet.create(partialBase, plan.size, options.splitSize)
  let written: Awaited<ReturnType<typeof writeBundleFile>>
  try {
    const fetchTask = root.child('Fetch blobs and files', {
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
        .child(`Check the package signatures of ${check.folder}`, {
          total: check.packages.length,
          unit: 'items',
        })
        .run(
          (task) => checkPackageSignatures(plan, volumes, check, task),
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

async function checkDiskSpace(dir: string, needed: number, alreadyThere: number): Promise<void> {
  const fs = await statfs(dir)
  const free = fs.bavail * fs.bsize
  const missing = needed - alreadyThere
  if (missing > free) {
    throw new AirgapError(
      'E_ENVIRONMENT',
      `Not enough disk space in ${dir}: the bundle needs ${formatBytes(needed)}${alreadyThere ? ` (${formatBytes(alreadyThere)} already written)` : ''}, and ${formatBytes(free)} is free.`,
      { hints: ['Free some space, or write the bundle elsewhere with --output.'], data: { needed, free } },
    )
  }
}

async function existingSize(base: string): Promise<number> {
  let total = 0
  for (const path of [base, ...volumePaths(base, 1000)]) {
    if (!existsSync(path)) {
      if (path !== base) break
      continue
    }
    total += (await stat(path)).blocks * 512 // allocated bytes: the file is sparse where nothing was written yet
  }
  return total
}

async function removeVolumes(base: string): Promise<void> {
  await rm(base, { force: true })
  for (const path of volumePaths(base, 1000)) {
    if (!existsSync(path)) break
    await rm(path, { force: true })
  }
}
