import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { AirgapError } from '../errors.js'
import type { BundleSpec } from '../spec/types.js'

/**
 * The files of a definition's stages as they go into a bundle (manifests/<stage>/<relative>): a stage path is a
 * folder (every file below it) or one file. Sorted, so the bundle is the same whatever order the disk lists them in.
 */
export interface StageFiles {
  name: string
  files: { relative: string; bytes: Buffer }[]
}

export async function readStageFiles(spec: BundleSpec): Promise<StageFiles[]> {
  const base = dirname(spec.source)
  const stages: StageFiles[] = []
  for (const stage of spec.stages) {
    const path = resolve(base, stage.path)
    let info: Awaited<ReturnType<typeof stat>>
    try {
      info = await stat(path)
    } catch {
      throw new AirgapError('E_INPUT', `Stage ${stage.name}: ${path} does not exist.`, {
        hints: [`Fix stages[].path in ${spec.source}; it is relative to the definition's folder.`],
      })
    }
    const files: StageFiles['files'] = []
    if (info.isDirectory()) {
      for (const file of await listFiles(path))
        files.push({ relative: relative(path, file), bytes: await readFile(file) })
    } else {
      files.push({ relative: path.split('/').pop()!, bytes: await readFile(path) })
    }
    files.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0))
    stages.push({ name: stage.name, files })
  }
  return stages
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await listFiles(full)))
    else if (entry.isFile()) out.push(full)
  }
  return out
}
