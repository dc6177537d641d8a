/**
 * The digests publish needs before it can ask a registry anything: sha256 of every chunk of the bundle file and of the
 * whole file, computed in one streaming read. A bundle of 50 GB takes minutes to read, so the result is kept in a
 * small cache file keyed by the bundle's volumes (path, size, inode, modification time) and the chunk size: a rerun
 * after an interruption, or a second publish of the same file, does not read it again.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import type { ByteSource } from '../bundle/volumes.js'
import { removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'
import { planChunks } from './bundle-artifact.js'

export interface ChunkDigests {
  digest: string
  size: number
  chunks: { offset: number; size: number; digest: string }[]
}

export interface HashChunksOptions {
  source: ByteSource
  chunkSize: number
  signal?: AbortSignal
  onProgress?: (bytes: number) => void
  /** Where the cache lives (default $XDG_CACHE_HOME/astrago-airgap). */
  cacheDir?: string
  /** Called with true when the digests came from the cache. */
  onCached?: () => void
}

const READ_PIECE = 4 << 20

export async function hashChunks(options: HashChunksOptions): Promise<ChunkDigests> {
  const { source, chunkSize, signal } = options
  const cacheFile = await cachePath(source, chunkSize, options.cacheDir)
  if (cacheFile) await removeLeftTemporaries(cacheFile).catch(() => undefined)
  const cached = cacheFile ? await readCache(cacheFile, source.size, chunkSize) : undefined
  if (cached) {
    options.onCached?.()
    options.onProgress?.(source.size)
    return cached
  }
  const whole = createHash('sha256')
  const chunks: ChunkDigests['chunks'] = []
  let done = 0
  for (const planned of planChunks(source.size, chunkSize)) {
    const hash = createHash('sha256')
    for await (const piece of source.createReadStream(planned.offset, planned.size, {
      chunkSize: READ_PIECE,
    })) {
      signal?.throwIfAborted()
      hash.update(piece as Buffer)
      whole.update(piece as Buffer)
      done += (piece as Buffer).length
      options.onProgress?.(done)
    }
    chunks.push({ ...planned, digest: `sha256:${hash.digest('hex')}` })
  }
  const result: ChunkDigests = { digest: `sha256:${whole.digest('hex')}`, size: source.size, chunks }
  if (cacheFile) await writeCache(cacheFile, result)
  return result
}

/** The cache file for these volumes at this chunk size; undefined when the volumes cannot be identified. */
async function cachePath(
  source: ByteSource,
  chunkSize: number,
  cacheDir?: string,
): Promise<string | undefined> {
  try {
    const identity = await Promise.all(
      source.paths.map(async (path) => {
        const info = await stat(path, { bigint: true })
        return [resolve(path), info.dev, info.ino, info.size, info.mtimeNs, info.ctimeNs].join(':')
      }),
    )
    const key = createHash('sha256')
      .update(JSON.stringify({ identity, chunkSize }))
      .digest('hex')
      .slice(0, 32)
    return join(cacheDir ?? defaultCacheDir(), 'publish', `${key}.json`)
  } catch {
    return undefined
  }
}

async function readCache(file: string, size: number, chunkSize: number): Promise<ChunkDigests | undefined> {
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as ChunkDigests
    const plan = planChunks(size, chunkSize)
    const fits =
      saved.size === size &&
      /^sha256:[a-f0-9]{64}$/.test(saved.digest) &&
      saved.chunks.length === plan.length &&
      saved.chunks.every(
        (c, i) =>
          c.offset === plan[i]!.offset && c.size === plan[i]!.size && /^sha256:[a-f0-9]{64}$/.test(c.digest),
      )
    return fits ? saved : undefined
  } catch {
    return undefined
  }
}

async function writeCache(file: string, digests: ChunkDigests): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await replaceFile(file, `${JSON.stringify(digests)}\n`, { mode: 0o600 })
  } catch {} // a cache that cannot be written only costs a second read
}

function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap')
}
