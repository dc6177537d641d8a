import { join } from 'node:path'
import { Task } from '../events/tasks.js'
import { type EventSink, silentSink } from '../events/types.js'
import type { HttpClient } from '../net/http.js'
import { type AptBaseline, type AptIndex, buildAptIndex, resolveAptClosure } from './apt-closure.js'
import type { AptPackage, AptRelease } from './apt-index.js'
import {
  buildAptRepositoryMetadata,
  type WriteAptRepositoryResult,
  writeAptRepository,
} from './apt-repo-writer.js'
import type { AptSigningKey } from './apt-signature.js'
import { type AptSource, archiveUrl, downloadAptPackages, fetchAptIndex } from './apt-source.js'
import type { PlannedPackageRepository } from './repository.js'

/**
 * The apt side of a bundle's `packages:` in three calls: resolve (fetch and verify the indices, compute the closure),
 * download (checked .deb files into a pool directory), write (a signed repository for the site).
 */

export interface ResolveAptPackagesOptions {
  http: HttpClient
  /**
   * More suites of the same archive read together with `source.suite`, as apt reads every line of sources.list
   * (jammy-updates and jammy-security beside jammy): the newest version of a package wins.
   */
  moreSuites?: string[]
  /** The first architecture is the target's native one; the others are foreign architectures enabled on it. */
  source: AptSource
  requests: string[]
  /** Requests that depend on what the index holds (the packages of a kernel: kernel-packages.ts), added to `requests`. */
  indexRequests?: (index: AptIndex) => string[]
  /** Default: `{ priorities: ['required'] }`. */
  baseline?: AptBaseline
  cacheDir?: string
  signal?: AbortSignal
}

export interface ResolveAptPackagesResult {
  release: AptRelease
  /** To fetch, sorted by name and architecture. */
  packages: AptPackage[]
  baseline: AptPackage[]
  /** `name:arch` → the dependency chain that brought it in. */
  reasons: Map<string, string[]>
  /** How many stanzas the indices held. */
  indexSize: number
  /** What was resolved: `requests` and the `indexRequests`. */
  requested: string[]
}

export async function resolveAptPackages(
  options: ResolveAptPackagesOptions,
): Promise<ResolveAptPackagesResult> {
  const suites = [options.source.suite, ...(options.moreSuites ?? [])]
  const fetchedSuites = []
  for (const suite of suites) {
    fetchedSuites.push(
      await fetchAptIndex({
        http: options.http,
        source: { ...options.source, suite },
        ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    )
  }
  const fetched = { release: fetchedSuites[0]!.release, packages: fetchedSuites.flatMap((f) => f.packages) }
  const [architecture, ...foreignArchitectures] = options.source.architectures
  const index = buildAptIndex(fetched.packages, {
    architecture: architecture ?? 'amd64',
    foreignArchitectures,
  })
  const requested = [...options.requests, ...(options.indexRequests?.(index) ?? [])]
  const closure = resolveAptClosure({
    index,
    requests: requested,
    baseline: options.baseline ?? { priorities: ['required'] },
  })
  return { release: fetched.release, ...closure, indexSize: fetched.packages.length, requested }
}

export interface MirrorAptRepositoryOptions extends ResolveAptPackagesOptions {
  /** Where the .deb files are downloaded (pool layout), reused across runs. */
  poolDir: string
  /** Where the signed repository is written. */
  repoDir: string
  key: AptSigningKey
  /** Suite name of the written repository (default: the source's suite). */
  suite?: string
  date?: Date
  concurrency?: number
  /** Progress: a task per step (resolve, download with bytes, write). */
  sink?: EventSink
}

/** Resolves, downloads and writes the signed repository in one go. */
export async function mirrorAptRepository(
  options: MirrorAptRepositoryOptions,
): Promise<ResolveAptPackagesResult & { repository: WriteAptRepositoryResult }> {
  const sink = options.sink ?? silentSink
  const where = `${options.source.mirror} ${options.source.suite}`
  const resolved = await new Task(sink, 'apt.resolve', `resolve apt packages from ${where}`, {
    data: { mirror: options.source.mirror, suite: options.source.suite },
  }).run(
    () => resolveAptPackages(options),
    (result) => `${result.packages.length} packages over a baseline of ${result.baseline.length}`,
  )
  const total = resolved.packages.reduce((sum, pkg) => sum + pkg.size, 0)
  await new Task(sink, 'apt.download', `download ${resolved.packages.length} .deb files`, {
    total,
    unit: 'bytes',
    data: { packages: resolved.packages.length },
  }).run(async (task) => {
    let done = 0
    await downloadAptPackages({
      http: options.http,
      mirror: options.source.mirror,
      packages: resolved.packages,
      dir: options.poolDir,
      onDownloaded: (pkg) => {
        done += pkg.size
        task.progress(done, total, 'bytes')
      },
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    })
  })
  const repository = await new Task(
    sink,
    'apt.repository',
    `write the signed apt repository ${options.repoDir}`,
    { data: { dir: options.repoDir } },
  ).run(() =>
    writeAptRepository({
      dir: options.repoDir,
      suite: options.suite ?? options.source.suite,
      architectures: options.source.architectures,
      packages: resolved.packages.map((control) => ({
        control,
        file: join(options.poolDir, control.filename),
      })),
      key: options.key,
      ...(options.date ? { date: options.date } : {}),
    }),
  )
  return { ...resolved, repository }
}

export interface PlanAptRepositoryOptions {
  /** The repository's name in the bundle (repo/apt/<name>). */
  name: string
  source: AptSource
  resolved: ResolveAptPackagesResult
  key: AptSigningKey
  date?: Date
}

/**
 * The bundle's view of a resolved apt closure: the signed metadata as bytes, and each .deb with its upstream URL,
 * size and sha256 from the index (so it is fetched straight into the bundle and checked while streaming).
 */
export async function planAptRepository(
  options: PlanAptRepositoryOptions,
): Promise<PlannedPackageRepository> {
  const { source, resolved } = options
  const metadata = await buildAptRepositoryMetadata({
    suite: source.suite,
    architectures: source.architectures,
    packages: resolved.packages,
    key: options.key,
    description: `${options.name}: packages from ${source.mirror} ${source.suite}`,
    ...(options.date ? { date: options.date } : {}),
  })
  return {
    kind: 'apt',
    name: options.name,
    metadata,
    packages: resolved.packages.map((pkg) => ({
      path: pkg.filename,
      url: archiveUrl(source.mirror, pkg.filename),
      sha256: pkg.sha256,
      size: pkg.size,
      name: pkg.package,
      version: pkg.version,
      architecture: pkg.architecture,
      reason: resolved.reasons.get(`${pkg.package}:${pkg.architecture}`) ?? [pkg.package],
    })),
    details: {
      upstream: `${source.mirror} ${source.suite} ${source.components.join(' ')}`,
      suite: source.suite,
      components: 'main',
      architectures: source.architectures.join(' '),
      key: options.key.fingerprint,
      baseline: String(resolved.baseline.length),
    },
  }
}
