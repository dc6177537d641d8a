import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import { downloadVerified } from './apt-source.js'
import { decompress } from './decompress.js'
import { verifyDetachedSignature } from './gpgv.js'
import { type FilelistsResult, readFilelists } from './rpm-filelists.js'
import type { RpmPackage } from './rpm-package.js'
import { readPrimary, readPrimaryBlocks } from './rpm-primary.js'
import { parseRepomd, type Repomd, type RepomdData } from './rpm-repomd.js'

/**
 * Fetching from an rpm-md repository (a dnf `baseurl`): repodata/repomd.xml, verified with its detached signature
 * repomd.xml.asc when the source is not `trusted` (as dnf's `repo_gpgcheck=1`), then the metadata files it lists,
 * each checked against repomd's sha256 and size, and the .rpm files, checked against primary's sha256 and size.
 * Downloads are content-addressed (`<cacheDir>/sha256/<hex>`) when a cache directory is given.
 */

export interface RpmSource {
  /** The repository root, holding repodata/ (a dnf baseurl, with $basearch etc. already expanded). */
  baseurl: string
  /** The target architecture first (x86_64, aarch64…), then extra ones wanted (i686 for multilib). */
  architectures: string[]
  /** OpenPGP public keys (armoured RPM-GPG-KEY-* files or binary keyrings) repomd.xml must be signed with. */
  keyrings: string[]
  /** Accept unsigned or badly signed metadata. Off unless set explicitly. */
  trusted?: boolean
  /**
   * What the keys sign: `repomd` (default: repomd.xml.asc, as dnf's repo_gpgcheck), or `packages` (every .rpm, as
   * dnf's gpgcheck: the distributions that sign packages but not their metadata). With `packages` an unsigned
   * repomd.xml is accepted and the caller must check each package's signature (rpm-signatures.ts).
   */
  signed?: 'repomd' | 'packages'
}

export interface FetchRpmMetadataOptions {
  http: HttpClient
  source: RpmSource
  cacheDir?: string
  signal?: AbortSignal
}

export interface FetchedRepomd {
  repomd: Repomd
  /** The repomd.xml text as verified. */
  text: string
  /** Fingerprints of the keys whose signatures were good (empty when trusted without checking). */
  fingerprints: string[]
}

export function repositoryUrl(baseurl: string, path: string): string {
  return `${baseurl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}

/** The URL of a package's .rpm (its location under the baseurl, or under its `xml:base`). */
export function rpmPackageUrl(baseurl: string, pkg: Pick<RpmPackage, 'location' | 'locationBase'>): string {
  return repositoryUrl(pkg.locationBase ?? baseurl, pkg.location)
}

async function fetchBytes(http: HttpClient, url: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  const res = await http.fetch(url, signal ? { signal } : {})
  if (res.status === 404) {
    await res.body.dump()
    return undefined
  }
  if (res.status !== 200) {
    await res.body.dump()
    throw new AirgapError('E_REMOTE', `GET ${url}: HTTP ${res.status}`, { data: { url } })
  }
  const chunks: Buffer[] = []
  for await (const chunk of res.body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * Fetches repodata/repomd.xml and, unless the source is trusted or signs its packages instead, verifies
 * repomd.xml.asc with its keys.
 */
export async function fetchRepomd(options: FetchRpmMetadataOptions): Promise<FetchedRepomd> {
  const { http, source, signal } = options
  const url = repositoryUrl(source.baseurl, 'repodata/repomd.xml')
  const bytes = await fetchBytes(http, url, signal)
  if (!bytes)
    throw new AirgapError(
      'E_REMOTE',
      `${source.baseurl} is not an rpm repository: ${url} is not found (HTTP 404)`,
      {
        data: { url },
        hints: ['Check the baseurl: it is the directory that holds repodata/ ($basearch etc. expanded).'],
      },
    )
  let fingerprints: string[] = []
  if (!source.trusted && source.signed !== 'packages') {
    const signature = await fetchBytes(http, `${url}.asc`, signal)
    if (!signature)
      throw new AirgapError('E_INTEGRITY', `${url} is not signed (no repomd.xml.asc)`, {
        data: { url },
        hints: [
          'If the distribution signs its packages rather than its metadata, say so with signed: packages (every package is then checked against the keys).',
          'Or set trusted: true on this source to accept unsigned metadata knowingly.',
        ],
      })
    fingerprints = await verifyDetachedSignature(bytes, signature, source.keyrings, url)
  }
  const text = bytes.toString('utf8')
  return { repomd: parseRepomd(text), text, fingerprints }
}

function expectedOf(data: RepomdData, url: string): { sha256: string; size: number } {
  if (data.checksum.type !== 'sha256')
    throw new AirgapError(
      'E_INPUT',
      `${url}: repomd.xml gives a ${data.checksum.type} checksum; only sha256 is accepted`,
      { hints: ['Recreate the upstream repository with createrepo_c (sha256 is its default).'] },
    )
  if (data.size === undefined || !Number.isFinite(data.size))
    throw new AirgapError('E_INPUT', `${url}: repomd.xml gives no size`)
  return { sha256: data.checksum.value, size: data.size }
}

/**
 * Opens one metadata file of repomd (`primary`, `filelists`, `other`), decompressed, checked against repomd's
 * sha256 and size: from the cache (downloading it there first) or, without a cache, fully in memory.
 */
export async function openRpmMetadata(
  options: FetchRpmMetadataOptions & { repomd: Repomd; type: string },
): Promise<Readable | undefined> {
  const data = options.repomd.data.find((d) => d.type === options.type)
  if (!data) return undefined
  const url = repositoryUrl(options.source.baseurl, data.location)
  const expected = expectedOf(data, url)
  if (options.cacheDir) {
    const file = join(options.cacheDir, 'sha256', expected.sha256)
    await downloadVerified(options.http, url, file, expected, options.signal)
    return decompress(data.location, createReadStream(file, { highWaterMark: 1 << 18 }))
  }
  const bytes = await fetchBytes(options.http, url, options.signal)
  if (!bytes)
    throw new AirgapError('E_REMOTE', `GET ${url}: HTTP 404 (listed in repomd.xml)`, { data: { url } })
  const digest = createHash('sha256').update(bytes).digest('hex')
  if (digest !== expected.sha256 || bytes.length !== expected.size)
    throw new AirgapError(
      'E_INTEGRITY',
      `${url}: checksum mismatch (expected sha256:${expected.sha256}, ${expected.size} bytes; got sha256:${digest}, ${bytes.length} bytes)`,
      { data: { url, expected: expected.sha256, actual: digest } },
    )
  return decompress(data.location, Readable.from([bytes]))
}

/**
 * Reads primary.xml of the repository. With `raw: false` the packages' raw XML is not kept (a distribution's
 * primary.xml is 150 MB and more); `fetchRpmPrimaryBlocks` then reads it for the chosen packages only.
 */
export async function fetchRpmPrimary(
  options: FetchRpmMetadataOptions & { repomd: Repomd; raw?: boolean },
): Promise<RpmPackage[]> {
  const input = await openRpmMetadata({ ...options, type: 'primary' })
  if (!input)
    throw new AirgapError('E_INPUT', `${options.source.baseurl}: repomd.xml lists no primary metadata`)
  const packages: RpmPackage[] = []
  await readPrimary(input, (pkg) => packages.push(pkg), options.raw === false ? { raw: false } : {})
  return packages
}

/** The raw primary.xml blocks of some pkgids (from the cache when the first pass had one). */
export async function fetchRpmPrimaryBlocks(
  options: FetchRpmMetadataOptions & { repomd: Repomd; pkgids: Set<string> },
): Promise<Map<string, string>> {
  const input = await openRpmMetadata({ ...options, type: 'primary' })
  if (!input)
    throw new AirgapError('E_INPUT', `${options.source.baseurl}: repomd.xml lists no primary metadata`)
  return await readPrimaryBlocks(input, options.pkgids)
}

/**
 * Reads filelists.xml (or other.xml with `type: 'other'`), keeping the raw blocks of `pkgids` and the providers of
 * `paths`. Undefined when repomd does not list it.
 */
export async function fetchRpmFilelists(
  options: FetchRpmMetadataOptions & {
    repomd: Repomd
    type?: 'filelists' | 'other'
    pkgids?: Set<string>
    paths?: Set<string>
  },
): Promise<FilelistsResult | undefined> {
  const input = await openRpmMetadata({ ...options, type: options.type ?? 'filelists' })
  if (!input) return undefined
  return await readFilelists(input, {
    ...(options.pkgids ? { pkgids: options.pkgids } : {}),
    ...(options.paths ? { paths: options.paths } : {}),
  })
}

/** Packages are fetched and verified by sha256 only. */
export function requireSha256(pkg: RpmPackage): void {
  if (pkg.checksum.type !== 'sha256' || !/^[0-9a-f]{64}$/.test(pkg.checksum.value))
    throw new AirgapError(
      'E_INPUT',
      `${pkg.name}-${pkg.version}-${pkg.release}.${pkg.arch}: primary.xml gives a ${pkg.checksum.type || 'missing'} checksum; only sha256 is accepted`,
      {
        data: { package: pkg.name, checksumType: pkg.checksum.type },
        hints: ['Recreate the upstream repository with createrepo_c (sha256 is its default).'],
      },
    )
}
