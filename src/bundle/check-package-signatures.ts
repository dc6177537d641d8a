import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Task } from '../events/tasks.js'
import { checkRpmSignatures } from '../packages/rpm-signatures.js'
import type { PackageSignatureCheck } from './bundle-lock.js'
import type { Plan } from './plan-layout.js'
import type { VolumeSet } from './volumes.js'

/**
 * For rpm sources that sign their packages rather than their metadata: once the packages are in the bundle being
 * written, each one's signature is checked by rpmkeys against the source's keys.
 */

/** Copies each package of the repository out of the bundle being written, in batches, for rpmkeys to check. */
export async function checkPackageSignatures(
  plan: Plan,
  volumes: VolumeSet,
  check: PackageSignatureCheck,
  task: Task,
): Promise<void> {
  const { folder, packages } = check
  const members = new Map(plan.members.map((m) => [m.path, m]))
  const work = await mkdtemp(join(tmpdir(), 'astrago-rpm-check-'))
  try {
    const batch = 50
    for (let at = 0; at < packages.length; at += batch) {
      const files = []
      for (const [i, pkg] of packages.slice(at, at + batch).entries()) {
        const member = members.get(`${folder}/${pkg.path}`)!
        const file = join(work, `${i}.rpm`)
        await pipeline(volumes.createReadStream(member.dataOffset, member.size), createWriteStream(file))
        files.push({ file, label: `${pkg.name} ${pkg.version} (${pkg.architecture})` })
      }
      await checkRpmSignatures(files, check.keyrings, folder)
      task.progress(Math.min(at + batch, packages.length), packages.length, 'items')
      await Promise.all(files.map((f) => rm(f.file, { force: true })))
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
