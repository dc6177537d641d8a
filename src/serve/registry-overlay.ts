import { createHash, type Hash, randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { AirgapError } from '../errors.js'
import { removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'
import { RegistryError } from './registry-errors.js'
import { type OverlayLimits, UploadLimits } from './registry-upload-limits.js'

/**
 * The writable side of the site registry: what was pushed after the bundle was made. It lives in a folder beside the
 * bundle and survives restarts:
 *
 *   blobs/<algorithm>/<hex>   every pushed blob and manifest, content-addressed (written to uploads/, verified while
 *                             streaming, then renamed into place)
 *   uploads/<uuid>            the bytes of an upload session so far; uploads/<uuid>.json says which repository
 *   index.json                repositories → tags and manifests (media type, size, subject), replaced atomically
 *
 * One server owns an overlay folder at a time. Mutations of index.json are serialised in this process. A blob is
 * fsynced before it is renamed into place, and its folder after, as index.json is: a tag never points at bytes that a
 * power cut could lose. Only a missing index.json means an empty overlay; one that cannot be read is an error, so a
 * push can never replace the tags it holds with an empty list.
 *
 * Uploads are bounded (registry-upload-limits.ts): the size of a blob, and the free space left on the disk.
 */
export interface OverlayManifest {
  mediaType: string
  size: number
  /** The digest of the manifest this one refers to (OCI referrers). */
  subject?: string
  artifactType?: string
  annotations?: Record<string, string>
}

interface OverlayRepository {
  tags: Record<string, string>
  manifests: Record<string, OverlayManifest>
}

interface OverlayIndex {
  format: typeof OVERLAY_FORMAT
  repositories: Record<string, OverlayRepository>
}

export interface UploadSession {
  id: string
  /** The repository the upload was started in. */
  name: string
  /** Bytes received so far. */
  size: number
}

const OVERLAY_FORMAT = 'astrago-airgap.registry-overlay/v1'
const STALE_UPLOAD_MS = 7 * 24 * 3600_000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const DIGEST_PATTERNS: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
}

/** Splits and checks a digest; only sha256 and sha512 are supported. */
export function parseDigest(digest: string): { algorithm: string; hex: string } | undefined {
  const colon = digest.indexOf(':')
  if (colon <= 0) return undefined
  const algorithm = digest.slice(0, colon)
  const hex = digest.slice(colon + 1)
  const pattern = DIGEST_PATTERNS[algorithm]
  return pattern?.test(hex) ? { algorithm, hex } : undefined
}

export class RegistryOverlay {
  private index: OverlayIndex
  private saving: Promise<void> = Promise.resolve()
  /** Running sha256 of each open upload, so completing it needs no second read; rebuilt from disk after a restart. */
  private readonly hashes = new Map<string, { hash: Hash; size: number }>()
  private readonly locks = new Map<string, Promise<unknown>>()

  private readonly limits: UploadLimits

  private constructor(
    readonly dir: string,
    index: OverlayIndex,
    limits: OverlayLimits,
  ) {
    this.index = index
    this.limits = new UploadLimits(dir, limits)
  }

  static async open(dir: string, limits: OverlayLimits = {}): Promise<RegistryOverlay> {
    try {
      await mkdir(join(dir, 'uploads'), { recursive: true })
      await mkdir(join(dir, 'blobs'), { recursive: true })
    } catch (error) {
      throw new AirgapError(
        'E_ENVIRONMENT',
        `Cannot create the registry overlay folder ${dir}: ${(error as Error).message}`,
        { hints: ['The folder beside the bundle must be writable for pushes.'], cause: error },
      )
    }
    let index: OverlayIndex = { format: OVERLAY_FORMAT, repositories: record() }
    const file = join(dir, 'index.json')
    await removeLeftTemporaries(file)
    let text: string | undefined
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AirgapError(
          'E_ENVIRONMENT',
          `Cannot read the registry overlay index ${file}: ${(error as Error).message}`,
          {
            hints: [
              'Pushed images and tags are listed there; fix its permissions or the disk, then restart serve.',
              'Do not remove it unless the pushed tags may be lost.',
            ],
            cause: error,
            data: { file },
          },
        )
      }
    }
    if (text !== undefined) {
      try {
        index = JSON.parse(text) as OverlayIndex
      } catch (error) {
        throw new AirgapError('E_INTEGRITY', `The registry overlay index ${file} is not valid JSON.`, {
          hints: [
            'It is written atomically, so this is damage from outside; restore it or remove the folder.',
          ],
          cause: error,
        })
      }
      if (index.format !== OVERLAY_FORMAT || typeof index.repositories !== 'object') {
        throw new AirgapError('E_INPUT', `${file} is not a registry overlay index (${OVERLAY_FORMAT}).`)
      }
      // Null-prototype records: a tag may be called "__proto__" or "constructor".
      const repositories = record<OverlayRepository>()
      for (const [name, repo] of Object.entries(index.repositories)) {
        repositories[name] = { tags: record(repo.tags), manifests: record(repo.manifests) }
      }
      index.repositories = repositories
    }
    const overlay = new RegistryOverlay(dir, index, limits)
    await overlay.removeStaleUploads()
    return overlay
  }

  // Repositories, tags and manifests.

  repositories(): string[] {
    return Object.keys(this.index.repositories)
  }

  hasRepository(name: string): boolean {
    return Object.hasOwn(this.index.repositories, name)
  }

  /** Every tag of a repository and the digest it points to. */
  tags(name: string): Record<string, string> {
    return this.repo(name)?.tags ?? record()
  }

  tag(name: string, tag: string): string | undefined {
    const tags = this.repo(name)?.tags
    return tags && Object.hasOwn(tags, tag) ? tags[tag] : undefined
  }

  manifest(name: string, digest: string): OverlayManifest | undefined {
    const repo = this.repo(name)
    return repo && Object.hasOwn(repo.manifests, digest) ? repo.manifests[digest] : undefined
  }

  /** Manifests of a repository that name `subject` as their subject (the referrers API). */
  referrers(name: string, subject: string): { digest: string; manifest: OverlayManifest }[] {
    const repo = this.repo(name)
    if (!repo) return []
    return Object.entries(repo.manifests)
      .filter(([, m]) => m.subject === subject)
      .map(([digest, manifest]) => ({ digest, manifest }))
  }

  /** Registers a repository (a blob was pushed or mounted into it). */
  async ensureRepository(name: string): Promise<void> {
    if (this.hasRepository(name)) return
    this.index.repositories[name] = { tags: record(), manifests: record() }
    await this.save()
  }

  /** Stores a verified manifest and points the given tags at it. */
  async putManifest(
    name: string,
    digest: string,
    bytes: Buffer,
    manifest: OverlayManifest,
    tags: string[] = [],
  ): Promise<void> {
    const parsed = parseDigest(digest)
    if (!parsed) throw new RegistryError('DIGEST_INVALID', `${digest} is not a supported digest.`)
    if (!(await this.blobFile(digest))) {
      const temp = join(this.dir, 'uploads', `manifest-${randomUUID()}`)
      await writeFile(temp, bytes)
      await this.moveIntoBlobs(temp, parsed)
    }
    const repo = this.repoForWrite(name)
    repo.manifests[digest] = manifest
    for (const tag of tags) repo.tags[tag] = digest
    await this.save()
  }

  /** Removes a tag; true if it was there. */
  async deleteTag(name: string, tag: string): Promise<boolean> {
    const repo = this.repo(name)
    if (!repo || !Object.hasOwn(repo.tags, tag)) return false
    delete repo.tags[tag]
    await this.save()
    return true
  }

  /** Removes a manifest and the tags pointing at it; its bytes stay (another repository may use them). */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const repo = this.repo(name)
    if (!repo || !Object.hasOwn(repo.manifests, digest)) return false
    delete repo.manifests[digest]
    for (const [tag, target] of Object.entries(repo.tags)) if (target === digest) delete repo.tags[tag]
    await this.save()
    return true
  }

  // Blobs.

  /** The file holding a blob, and its size, if the overlay has it. */
  async blobFile(digest: string): Promise<{ path: string; size: number } | undefined> {
    const parsed = parseDigest(digest)
    if (!parsed) return undefined
    const path = join(this.dir, 'blobs', parsed.algorithm, parsed.hex)
    try {
      const info = await stat(path)
      return info.isFile() ? { path, size: info.size } : undefined
    } catch {
      return undefined
    }
  }

  openBlob(path: string, start: number, end: number): Readable {
    return createReadStream(path, { start, end, highWaterMark: 256 << 10 })
  }

  // Uploads.

  async startUpload(name: string): Promise<UploadSession> {
    const id = randomUUID()
    await writeFile(this.uploadPath(id), '')
    await writeFile(
      `${this.uploadPath(id)}.json`,
      JSON.stringify({ name, started: new Date().toISOString() }),
    )
    this.hashes.set(id, { hash: createHash('sha256'), size: 0 })
    return { id, name, size: 0 }
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    if (!UUID.test(id)) return undefined
    try {
      const meta = JSON.parse(await readFile(`${this.uploadPath(id)}.json`, 'utf8')) as { name: string }
      const info = await stat(this.uploadPath(id))
      return { id, name: meta.name, size: info.size }
    } catch {
      return undefined
    }
  }

  /**
   * Appends a request body to an upload. With `start`, the chunk must begin where the upload ends (else
   * RANGE_INVALID); with `length`, exactly that many bytes must arrive. A chunk that fails half-way is rolled back,
   * so a client can send it again.
   */
  async appendUpload(
    session: UploadSession,
    body: Readable,
    expect: { start?: number; length?: number } = {},
  ): Promise<UploadSession> {
    return await this.withLock(session.id, async () => {
      const path = this.uploadPath(session.id)
      const before = (await stat(path)).size
      if (expect.start !== undefined && expect.start !== before) {
        body.resume()
        throw new RegistryError(
          'RANGE_INVALID',
          `The chunk starts at byte ${expect.start}, but the upload has ${before} bytes.`,
          { size: before },
        )
      }
      try {
        await this.limits.checkRoom(before, expect.length)
      } catch (error) {
        body.resume()
        throw error
      }
      const running = await this.runningHash(session.id, before)
      const limits = this.limits
      let received = 0
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length
          if (before + received > limits.maxBlobBytes) {
            done(limits.tooLarge())
            return
          }
          running.hash.update(chunk)
          done(null, chunk)
        },
      })
      try {
        await pipeline(body, tap, createWriteStream(path, { flags: 'a' })).catch(
          (error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOSPC') throw this.limits.noSpace()
            throw error
          },
        )
        if (expect.length !== undefined && received !== expect.length) {
          throw new RegistryError(
            'SIZE_INVALID',
            `The chunk should have ${expect.length} bytes; ${received} arrived.`,
          )
        }
      } catch (error) {
        this.hashes.delete(session.id)
        await truncate(path, before).catch(() => undefined)
        throw error
      }
      running.size = before + received
      return { ...session, size: before + received }
    })
  }

  /** Completes an upload: its bytes must hash to `digest` (else DIGEST_INVALID, and the upload is discarded). */
  async completeUpload(session: UploadSession, digest: string): Promise<{ size: number }> {
    return await this.withLock(session.id, async () => {
      const parsed = parseDigest(digest)
      if (!parsed) {
        throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 or sha512 digest.`, { digest })
      }
      const path = this.uploadPath(session.id)
      const size = (await stat(path)).size
      const actual =
        parsed.algorithm === 'sha256'
          ? (await this.runningHash(session.id, size)).hash.copy().digest('hex')
          : await hashFile(path, parsed.algorithm)
      if (actual !== parsed.hex) {
        await this.removeUpload(session.id)
        throw new RegistryError(
          'DIGEST_INVALID',
          `The uploaded bytes have digest ${parsed.algorithm}:${actual}, not ${digest}.`,
          { expected: digest, actual: `${parsed.algorithm}:${actual}` },
        )
      }
      await this.moveIntoBlobs(path, parsed)
      await this.removeUpload(session.id)
      await this.ensureRepository(session.name)
      return { size }
    })
  }

  async cancelUpload(session: UploadSession): Promise<void> {
    await this.withLock(session.id, () => this.removeUpload(session.id))
  }

  // Internals.

  private repo(name: string): OverlayRepository | undefined {
    return Object.hasOwn(this.index.repositories, name) ? this.index.repositories[name] : undefined
  }

  private repoForWrite(name: string): OverlayRepository {
    const existing = this.repo(name)
    if (existing) return existing
    const created: OverlayRepository = { tags: record(), manifests: record() }
    this.index.repositories[name] = created
    return created
  }

  private uploadPath(id: string): string {
    return join(this.dir, 'uploads', id)
  }

  /** Moves a verified file into blobs/: its bytes reach the disk before the rename, and the rename after. */
  private async moveIntoBlobs(from: string, digest: { algorithm: string; hex: string }): Promise<void> {
    const dir = join(this.dir, 'blobs', digest.algorithm)
    await mkdir(dir, { recursive: true })
    await syncPath(from, 'r+')
    await rename(from, join(dir, digest.hex))
    await syncPath(dir, 'r')
  }

  private async removeUpload(id: string): Promise<void> {
    this.hashes.delete(id)
    await rm(this.uploadPath(id), { force: true })
    await rm(`${this.uploadPath(id)}.json`, { force: true })
  }

  /** The running sha256 of an upload of `size` bytes; rehashes the file if this process has not seen it all. */
  private async runningHash(id: string, size: number): Promise<{ hash: Hash; size: number }> {
    const known = this.hashes.get(id)
    if (known && known.size === size) return known
    const hash = createHash('sha256')
    if (size > 0) {
      for await (const chunk of createReadStream(this.uploadPath(id), { end: size - 1 })) hash.update(chunk)
    }
    const running = { hash, size }
    this.hashes.set(id, running)
    return running
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve()
    const next = previous.then(fn, fn)
    const settled = next.catch(() => undefined)
    this.locks.set(key, settled)
    try {
      return await next
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key)
    }
  }

  /** Writes index.json atomically (temp file, fsync, rename); writes are serialised. */
  private async save(): Promise<void> {
    const file = join(this.dir, 'index.json')
    const write = () => replaceFile(file, `${JSON.stringify(this.index, null, 2)}\n`, { durable: true })
    const next = this.saving.then(write, write)
    this.saving = next.catch(() => undefined)
    await next
  }

  private async removeStaleUploads(): Promise<void> {
    const dir = join(this.dir, 'uploads')
    for (const name of await readdir(dir)) {
      const path = join(dir, name)
      try {
        if (Date.now() - (await stat(path)).mtimeMs > STALE_UPLOAD_MS) await rm(path, { force: true })
      } catch {}
    }
  }
}

/** fsyncs a file or folder. */
async function syncPath(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** An object without a prototype, so any key (even "__proto__") is plain data. */
function record<T = string>(from?: Record<string, T>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, from)
}

async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm)
  for await (const chunk of createReadStream(path)) hash.update(chunk)
  return hash.digest('hex')
}
