import { existsSync } from 'node:fs'
import { rename, rm, stat, statfs } from 'node:fs/promises'
import { dirname } from 'node:path'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import type { EventSink } from '../events/types.js'
import { type FileIdentity, fileIdentity, Journal, type JournalRecord, sameFile } from './journal.js'
import type { Plan } from './plan-layout.js'
import { VolumeSet, volumePaths } from './volumes.js'

/**
 * Where a bundle is written before it is finished: `<output>.partial` (or its volumes) and `<output>.journal`. A rerun
 * continues an interrupted run only when the journal's files are on disk: the very files it was written for, at the
 * planned sizes. A journal whose files are gone or replaced is discarded with a warning and the run starts over, so
 * members the journal calls done are never skipped in a file that does not hold them. When the earlier run had
 * renamed its finished file into place and stopped before removing the journal, that file is taken back.
 */
export interface PartialBundle {
  volumes: VolumeSet
  journal: Journal
  resumed: boolean
}

export async function openPartialBundle(
  output: string,
  plan: Plan,
  splitSize: number | undefined,
  sink: EventSink,
): Promise<PartialBundle> {
  const partialBase = `${output}.partial`
  const journalPath = `${output}.journal`
  const planned = plannedVolumes(partialBase, plan.size, splitSize)
  const finished = splitSize ? volumePaths(output, planned.length) : [output]

  const record = await Journal.read(journalPath, plan.digest)
  let resumed = false
  if (record) {
    const problem = await takeBackFiles(record, planned, finished)
    if (problem) {
      sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_RESUME_DISCARDED',
        message: `The journal ${journalPath} of an interrupted run cannot be trusted: ${problem}. Starting over.`,
        data: { journal: journalPath, problem },
      })
    } else resumed = true
  }

  // Space first, before anything is written; an interrupted run's partial file already holds some of it.
  await checkDiskSpace(
    dirname(output),
    plan.size,
    existsSync(journalPath) ? await existingSize(partialBase) : 0,
  )
  if (resumed) {
    sink.emit({
      type: 'log',
      level: 'info',
      code: 'I_RESUME',
      message: `Resuming the interrupted bundle ${output}`,
      data: { output },
    })
  } else {
    // The journal goes first: a crash from here on leaves files no journal vouches for.
    await rm(journalPath, { force: true })
    await removeVolumes(partialBase)
  }
  const volumes = await VolumeSet.create(partialBase, plan.size, splitSize)
  try {
    const journal =
      record && resumed
        ? Journal.resume(journalPath, record)
        : await Journal.create(journalPath, plan.digest, volumes.paths)
    return { volumes, journal, resumed }
  } catch (error) {
    await volumes.close()
    throw error
  }
}

/** The paths and sizes VolumeSet.create gives the volumes of a stream of `size` bytes. */
function plannedVolumes(base: string, size: number, splitSize?: number): { path: string; size: number }[] {
  const volumeSize = splitSize && splitSize < size ? splitSize : Math.max(size, 1)
  const count = Math.max(1, Math.ceil(size / volumeSize))
  const paths = count === 1 && !splitSize ? [base] : volumePaths(base, count)
  return paths.map((path, i) => ({
    path,
    size: i === count - 1 ? size - volumeSize * (count - 1) : volumeSize,
  }))
}

/**
 * Checks that each file the journal was written for is at its partial path, or at its finished path (renamed there by
 * a run that stopped before removing the journal; then it is moved back), at its planned size. Undefined when all
 * are; else what is wrong.
 */
async function takeBackFiles(
  record: JournalRecord,
  planned: { path: string; size: number }[],
  finished: string[],
): Promise<string | undefined> {
  if (record.files.length === 0) return 'it does not record which files it was written for'
  if (record.files.length !== planned.length) {
    return `it was written for ${record.files.length} volume(s), and this run writes ${planned.length}`
  }
  const moves: [string, string][] = []
  for (const [i, volume] of planned.entries()) {
    const recorded: FileIdentity = record.files[i]!
    if (recorded.size !== volume.size) {
      return `it was written for volumes of another size (${volume.path} is planned at ${volume.size} bytes)`
    }
    if (sameFile(await fileIdentity(volume.path), recorded)) continue
    if (sameFile(await fileIdentity(finished[i]!), recorded)) {
      moves.push([finished[i]!, volume.path])
      continue
    }
    return existsSync(volume.path)
      ? `${volume.path} is not the file it was written for (replaced, or of another size)`
      : `${volume.path} is missing`
  }
  for (const [from, to] of moves) await rename(from, to)
  return undefined
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

export async function removeVolumes(base: string): Promise<void> {
  await rm(base, { force: true })
  for (const path of volumePaths(base, 1000)) {
    if (!existsSync(path)) break
    await rm(path, { force: true })
  }
}
