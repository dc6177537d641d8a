import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { PassThrough, type Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { AirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import { type AptPackage, type AptRelease, parseRelease, readPackagesIndex } from './apt-index.js'
import { stripClearsign, verifyClearsigned } from './apt-signature.js'
import { decompress } from './decompress.js'
import { verifyDetachedSignature } from './gpgv.js'

/**
 * Fetching from an apt archive: the signed Release, the Packages indices it lists (checked against its SHA256 list),
 * and .deb files (checked against the index). Downloads are content-addressed in a cache directory when one is
 * given, so a rerun fetches nothing that is already there.
 */

export interface AptSource {
  /** Archive root, e.g. the URI of a deb822 .sources entry. */
  mirror: string
  suite: string
  components: string[]
  architectures: string[]
  /** Binary OpenPGP keyrings the Release must be signed with (signed-by). */
  keyrings: string[]
  /** Accept unsigned or badly signed metadata. Off unless set explicitly. */
  trusted?: boolean
}

export interface FetchAptIndexOptions {
  http: HttpClient
  source: AptSource
  /** Directory for content-addressed downloads (`<dir>/sha256/<hex>`), reused across runs. */
  cacheDir?: string
  signal?: AbortSignal
  /** Reject a Release whose Valid-Until has passed (default true, as apt). */
  checkValidUntil?: boolean
  now?: Date
}

export interface FetchedAptIndex {
  release: AptRelease
  /** The signed Release text as verified. */
  releaseText: string
  packages: AptPackage[]
  /** Index files read, relative to dists/<suite>/. */
  indices: string[]
}

export function archiveUrl(mirror: string, path: string): string {
  return `${mirror.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}

async function fetchText(http: HttpClient, url: string, signal?: AbortSignal): Promise<string | undefined> {
  const res = await http.fetch(url, { signal })
  if (res.status === 404) {
    await res.body.dump()
    return undefined
  }
  if (res.status !== 200) {
    await res.body.dump()
    throw new AirgapError('E_REMOTE', `GET ${url}: HTTP ${res.status}`)
  }
  return await res.body.text()
}

/** Fetches dists/<suite>/InRelease (or Release + Release.gpg) and verifies it with the source's keyrings. */
export async function fetchAptRelease(
  options: FetchAptIndexOptions,
): Promise<{ release: AptRelease; releaseText: string }> {
  const { http, source, signal } = options
  const base = `dists/${source.suite}`
  const inReleaseUrl = archiveUrl(source.mirror, `${base}/InRelease`)
  let releaseText: string
  const inRelease = await fetchText(http, inReleaseUrl, signal)
  if (inRelease !== undefined) {
    releaseText = source.trusted
      ? stripClearsign(inRelease)
      : (await verifyClearsigned(inRelease, source.keyrings, inReleaseUrl)).text
  } else {
    const releaseUrl = archiveUrl(source.mirror, `${base}/Release`)
    const release = await fetchText(http, releaseUrl, signal)
    if (release === undefined)
      throw new AirgapError(
        'E_REMOTE',
        `${source.mirror} has no suite ${source.suite} (no InRelease or Release)`,
        {
          data: { url: inReleaseUrl },
          hints: ['Check the mirror URL and the suite name.'],
        },
      )
    if (!source.trusted) {
      const signature = await fetchText(http, `${releaseUrl}.gpg`, signal)
      if (signature === undefined)
        throw new AirgapError('E_INTEGRITY', `${releaseUrl} is not signed (no InRelease, no Release.gpg)`, {
          hints: ['Set trusted: true on this source to accept unsigned metadata knowingly.'],
        })
      await verifyDetachedSignature(Buffer.from(release), Buffer.from(signature), source.keyrings, releaseUrl)
    }
    releaseText = release
  }
  const release = parseRelease(releaseText)
  const now = options.now ?? new Date()
  if (!source.trusted && options.checkValidUntil !== false && release.validUntil && release.validUntil < now)
    throw new AirgapError(
      'E_INTEGRITY',
      `${inReleaseUrl} expired on ${release.validUntil.toISOString()} (Valid-Until): the mirror is stale`,
    )
  return { release, releaseText }
}

/** Prefers Packages.gz (decompressed in-process), then Packages.xz (the xz binary), then Packages. */
export function pickIndex(release: AptRelease, dir: string): string | undefined {
  for (const suffix of ['.gz', '.xz', ''])
    if (release.sha256.has(`${dir}/Packages${suffix}`)) return `${dir}/Packages${suffix}`
  return undefined
}

function hashingStream(
  expected: { sha256: string; size: number },
  what: string,
  hash = createHash('sha256'),
  already = 0,
): Transform {
  let size = already
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      size += chunk.length
      if (size > expected.size)
        callback(new AirgapError('E_INTEGRITY', `${what}: larger than the ${expected.size} bytes announced`))
      else callback(null, chunk)
    },
    flush(callback) {
      const digest = hash.digest('hex')
      if (digest !== expected.sha256 || size !== expected.size)
        callback(
          new AirgapError(
            'E_INTEGRITY',
            `${what}: checksum mismatch (expected sha256:${expected.sha256}, ${expected.size} bytes; got sha256:${digest}, ${size} bytes)`,
            { data: { url: what, expected: expected.sha256, actual: digest } },
          ),
        )
      else callback()
    },
  })
}

async function isCached(path: string, expected: { sha256: string; size: number }): Promise<boolean> {
  try {
    if ((await stat(path)).size !== expected.size) return false
  } catch {
    return false
  }
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex') === expected.sha256
}

/**
 * Downloads `url` to `path`, verifying size and sha256 while streaming (a `.partial` file is renamed into place only
 * when it matches). An interrupted download resumes from its `.partial` with a Range request (the bytes already there
 * are hashed first); a server that ignores Range sends everything again. Returns false if `path` was already there
 * and matching.
 */
export async function downloadVerified(
  http: HttpClient,
  url: string,
  path: string,
  expected: { sha256: string; size: number },
  signal?: AbortSignal,
): Promise<boolean> {
  if (await isCached(path, expected)) return false
  await mkdir(dirname(path), { recursive: true })
  const partial = `${path}.partial`
  let offset = 0
  try {
    offset = (await stat(partial)).size
  } catch {}
  if (offset >= expected.size) {
    await rm(partial, { force: true })
    offset = 0
  }
  let hash = createHash('sha256')
  if (offset) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer)
  const res = await http.fetch(url, { signal, ...(offset ? { headers: { range: `bytes=${offset}-` } } : {}) })
  if (res.status === 200 && offset) {
    offset = 0
    hash = createHash('sha256')
  } else if (res.status !== 200 && !(res.status === 206 && offset)) {
    await res.body.dump()
    throw new AirgapError('E_REMOTE', `GET ${url}: HTTP ${res.status}`, { data: { url } })
  }
  try {
    await pipeline(
      res.body,
      hashingStream(expected, url, hash, offset),
      createWriteStream(partial, { flags: offset ? 'a' : 'w' }),
      { signal },
    )
  } catch (error) {
    // A checksum mismatch cannot be resumed; a transport failure can.
    if (error instanceof AirgapError && error.code === 'E_INTEGRITY') await rm(partial, { force: true })
    throw error
  }
  await rename(partial, path)
  return true
}

/** Reads the Packages indices of every component and architecture of the source. */
export async function fetchAptIndex(options: FetchAptIndexOptions): Promise<FetchedAptIndex> {
  const { http, source, signal } = options
  const { release, releaseText } = await fetchAptRelease(options)
  const packages: AptPackage[] = []
  const indices: string[] = []
  for (const component of source.components) {
    for (const architecture of source.architectures) {
      const path = pickIndex(release, `${component}/binary-${architecture}`)
      if (!path)
        throw new AirgapError(
          'E_INPUT',
          `${source.mirror} ${source.suite} has no Packages index for ${component}/${architecture}`,
          {
            hints: [
              `The Release lists components ${release.components.join(', ')}, architectures ${release.architectures.join(', ')}.`,
            ],
          },
        )
      const expected = release.sha256.get(path)!
      const url = archiveUrl(source.mirror, `dists/${source.suite}/${path}`)
      let input: Readable
      if (options.cacheDir) {
        const file = join(options.cacheDir, 'sha256', expected.sha256)
        await downloadVerified(http, url, file, expected, signal)
        input = createReadStream(file)
      } else {
        const res = await http.fetch(url, { signal })
        if (res.status !== 200) {
          await res.body.dump()
          throw new AirgapError('E_REMOTE', `GET ${url}: HTTP ${res.status}`, { data: { url } })
        }
        const checked = new PassThrough()
        pipeline(res.body, hashingStream(expected, url), checked).catch((error) => checked.destroy(error))
        input = checked
      }
      await readPackagesIndex(decompress(path, input), (pkg) => packages.push(pkg))
      indices.push(path)
    }
  }
  return { release, releaseText, packages, indices }
}

export interface DownloadAptPackagesOptions {
  http: HttpClient
  mirror: string
  packages: AptPackage[]
  /** Files land at `<dir>/<Filename>` (the pool layout of the archive). */
  dir: string
  concurrency?: number
  signal?: AbortSignal
  onDownloaded?: (pkg: AptPackage, fetched: boolean) => void
}

/** Downloads the .deb files of the packages, in parallel, each checked against the index's Size and SHA256. */
export async function downloadAptPackages(options: DownloadAptPackagesOptions): Promise<void> {
  const queue = [...options.packages]
  const worker = async () => {
    for (let pkg = queue.shift(); pkg; pkg = queue.shift()) {
      if (pkg.filename.includes('..') || pkg.filename.startsWith('/'))
        throw new AirgapError('E_INPUT', `${pkg.package}: unsafe Filename ${pkg.filename}`)
      const fetched = await downloadVerified(
        options.http,
        archiveUrl(options.mirror, pkg.filename),
        join(options.dir, pkg.filename),
        pkg,
        options.signal,
      )
      options.onDownloaded?.(pkg, fetched)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker))
}

/** Reads a Packages index from a local file; `name` (default: the path) says the compression (.gz, .xz or none). */
export async function readPackagesFile(path: string, name = path): Promise<AptPackage[]> {
  const packages: AptPackage[] = []
  await readPackagesIndex(decompress(name, createReadStream(path, { highWaterMark: 1 << 18 })), (pkg) =>
    packages.push(pkg),
  )
  return packages
}
