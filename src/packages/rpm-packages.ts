import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AirgapError, isAirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import type { AptSigningKey } from './apt-signature.js'
import { downloadVerified } from './apt-source.js'
import type { PlannedPackageFile, PlannedPackageRepository } from './repository.js'
import { type RpmClosureResult, resolveRpmClosure } from './rpm-closure.js'
import { addRpmFileProviders, buildRpmIndex, missingRpmFilePaths, type RpmIndex } from './rpm-index.js'
import type { RpmPackageBlock } from './rpm-package.js'
import { planRpmRepository } from './rpm-repo-writer.js'
import {
  type FetchedRepomd,
  fetchRepomd,
  fetchRpmFilelists,
  fetchRpmPrimary,
  fetchRpmPrimaryBlocks,
  type RpmSource,
  requireSha256,
} from './rpm-source.js'

/**
 * The rpm side of a bundle's `packages:`: resolve (fetch and verify repomd.xml, read primary.xml, compute the
 * closure, pick the chosen packages' filelists and other blocks), then plan (the signed repodata as bytes, each
 * .rpm with its URL, sha256 and size), mirroring apt-packages.ts.
 */

export interface ResolveRpmPackagesOptions {
  http: HttpClient
  source: RpmSource
  /** `name`, `name.arch`, `name >= 1.2-3` (`=`, `<`, `<=`, `>`), a provide or a file path. */
  requests: string[]
  /** Requests that depend on what the index holds (the packages of a kernel: kernel-packages.ts), added to `requests`. */
  indexRequests?: (index: RpmIndex) => string[]
  /** Names or provides the nodes already have (default none: everything is fetched). */
  baseline?: string[]
  /** Directory for content-addressed metadata downloads (`<dir>/sha256/<hex>`), reused across runs. */
  cacheDir?: string
  signal?: AbortSignal
  /** Read other.xml (changelogs) for the chosen packages (default true); otherwise empty entries are written. */
  otherData?: boolean
}

export interface ResolveRpmPackagesResult extends RpmClosureResult {
  repomd: FetchedRepomd
  /** filelists.xml blocks of the chosen packages, by pkgid. */
  filelists: Map<string, RpmPackageBlock>
  /** other.xml blocks of the chosen packages, by pkgid. */
  other: Map<string, RpmPackageBlock>
  /** How many packages primary.xml held. */
  indexSize: number
  /** What was resolved: `requests` and the `indexRequests`. */
  requested: string[]
}

function isFileDependencyFailure(error: unknown): boolean {
  if (!isAirgapError(error) || error.code !== 'E_INPUT') return false
  const dependency = (error.data as { dependency?: unknown } | undefined)?.dependency
  return typeof dependency === 'string' && dependency.startsWith('/')
}

/**
 * Fetches and verifies the source's metadata and resolves the closure of `requests` over the baseline. File
 * requires that primary.xml does not list are looked up in filelists.xml only when the closure needs one.
 */
export async function resolveRpmPackages(
  options: ResolveRpmPackagesOptions,
): Promise<ResolveRpmPackagesResult> {
  // Metadata is read in two passes (the index without the packages' raw XML, then the chosen packages' blocks):
  // without a cache directory, a temporary one keeps it from being downloaded twice.
  const temporary = options.cacheDir ? undefined : await mkdtemp(join(tmpdir(), 'aa-rpm-metadata-'))
  try {
    return await resolveWithCache(options, (options.cacheDir ?? temporary)!)
  } finally {
    if (temporary) await rm(temporary, { recursive: true, force: true })
  }
}

async function resolveWithCache(
  options: ResolveRpmPackagesOptions,
  cacheDir: string,
): Promise<ResolveRpmPackagesResult> {
  const fetchOptions = {
    http: options.http,
    source: options.source,
    cacheDir,
    ...(options.signal ? { signal: options.signal } : {}),
  }
  const repomd = await fetchRepomd(fetchOptions)
  const primary = await fetchRpmPrimary({ ...fetchOptions, repomd: repomd.repomd, raw: false })
  const index = buildRpmIndex(primary, { architectures: options.source.architectures })
  const requested = [...options.requests, ...(options.indexRequests?.(index) ?? [])]
  const closureOptions = {
    index,
    requests: requested,
    ...(options.baseline ? { baseline: options.baseline } : {}),
  }
  let closure: RpmClosureResult
  try {
    closure = resolveRpmClosure(closureOptions)
  } catch (error) {
    if (!isFileDependencyFailure(error)) throw error
    // A file primary does not list (it keeps /etc, bin dirs and a few more): filelists.xml knows every file.
    const missing = missingRpmFilePaths(index)
    const found = await fetchRpmFilelists({ ...fetchOptions, repomd: repomd.repomd, paths: missing })
    if (!found) throw error
    addRpmFileProviders(index, found.providers)
    closure = resolveRpmClosure(closureOptions)
  }
  for (const pkg of closure.packages) requireSha256(pkg)
  const pkgids = new Set(closure.packages.map((pkg) => pkg.checksum.value))
  const raw = await fetchRpmPrimaryBlocks({ ...fetchOptions, repomd: repomd.repomd, pkgids })
  const packages = closure.packages.map((pkg) => {
    const block = raw.get(pkg.checksum.value)
    if (!block)
      throw new AirgapError('E_INTEGRITY', `${pkg.name}: its primary.xml block changed between two reads`)
    return { ...pkg, raw: block }
  })
  const baseline = closure.baseline
  const filelists =
    (await fetchRpmFilelists({ ...fetchOptions, repomd: repomd.repomd, pkgids }))?.blocks ?? new Map()
  const other =
    options.otherData === false
      ? new Map<string, RpmPackageBlock>()
      : ((await fetchRpmFilelists({ ...fetchOptions, repomd: repomd.repomd, type: 'other', pkgids }))
          ?.blocks ?? new Map<string, RpmPackageBlock>())
  return {
    packages,
    baseline,
    reasons: closure.reasons,
    repomd,
    filelists,
    other,
    indexSize: primary.length,
    requested,
  }
}

export interface PlanRpmPackagesOptions extends ResolveRpmPackagesOptions {
  /** The repository's name in the bundle (repo/rpm/<name>). */
  name: string
  key: AptSigningKey
  date?: Date
}

/** resolveRpmPackages then planRpmRepository, in one call. */
export async function planRpmPackages(
  options: PlanRpmPackagesOptions,
): Promise<{ resolved: ResolveRpmPackagesResult; plan: PlannedPackageRepository }> {
  const resolved = await resolveRpmPackages(options)
  const plan = await planRpmRepository({
    name: options.name,
    source: options.source,
    resolved,
    key: options.key,
    ...(options.date ? { date: options.date } : {}),
  })
  return { resolved, plan }
}

export interface DownloadPlannedPackagesOptions {
  http: HttpClient
  packages: PlannedPackageFile[]
  /** Content-addressed: files land at `<dir>/sha256/<hex>`, reused across runs. */
  dir: string
  concurrency?: number
  signal?: AbortSignal
  onDownloaded?: (pkg: PlannedPackageFile, fetched: boolean) => void
}

/**
 * Downloads planned package files (of any kind) in parallel, each checked against its sha256 and size while
 * streaming; a mismatch is E_INTEGRITY naming the package. Returns repository path → local file, as
 * `writePlannedRepository` takes it.
 */
export async function downloadPlannedPackages(
  options: DownloadPlannedPackagesOptions,
): Promise<Map<string, string>> {
  const queue = [...options.packages]
  const files = new Map<string, string>()
  const worker = async () => {
    for (let pkg = queue.shift(); pkg; pkg = queue.shift()) {
      if (!/^[0-9a-f]{64}$/.test(pkg.sha256))
        throw new AirgapError(
          'E_INPUT',
          `${pkg.name} ${pkg.version}: no sha256 to check the download against`,
        )
      const file = join(options.dir, 'sha256', pkg.sha256)
      const fetched = await downloadVerified(
        options.http,
        pkg.url,
        file,
        { sha256: pkg.sha256, size: pkg.size },
        options.signal,
      ).catch((error: unknown) => {
        if (isAirgapError(error))
          throw new AirgapError(
            error.code,
            `${pkg.name} ${pkg.version} (${pkg.architecture}): ${error.message}`,
            {
              cause: error,
              data: { ...(error.data ?? {}), package: pkg.name, version: pkg.version, url: pkg.url },
              ...(error.hints ? { hints: error.hints } : {}),
            },
          )
        throw error
      })
      files.set(pkg.path, file)
      options.onDownloaded?.(pkg, fetched)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker))
  return files
}
