import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, rename, rm, stat, statfs } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { type DiscoveredImage, discoverImages, ImageCollector } from '../charts/discover-images.js'
import { downloadChart } from '../charts/download.js'
import type { RepoIndex } from '../charts/repo-index.js'
import { buildRepoIndex } from '../charts/repo-writer.js'
import { runPool } from '../concurrency/pool.js'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { findHelm } from '../helm/find-helm.js'
import type { HttpClient } from '../net/http.js'
import { buildChartArtifact, pullChartArtifact } from '../oci/chart-artifact.js'
import { MediaType } from '../oci/media-types.js'
import { formatImageReference, parseImageReference } from '../oci/reference.js'
import type { RegistryClient } from '../oci/registry-client.js'
import { stopGpgAgent } from '../packages/apt-signature.js'
import { planPackageRepository } from '../packages/plan-repository.js'
import type { PlannedPackageRepository } from '../packages/repository.js'
import { checkRpmSignatures } from '../packages/rpm-signatures.js'
import { loadSigningKey } from '../packages/signing-key.js'
import type { BundleSpec, ChartSpec } from '../spec/types.js'
import { Journal } from './journal.js'
import {
  BUNDLE_JSON,
  blobPath,
  CHARTS_INDEX,
  chartFileName,
  chartPath,
  chartRepository,
  defaultBundleFileName,
  filePath,
  INSTALLER,
  installerFileName,
  OCI_INDEX,
  OCI_LAYOUT_FILE,
  packageRepositoryPath,
  stageFilePath,
} from './layout.js'
import {
  BUNDLE_FORMAT,
  type BundleMetadata,
  type LockedChart,
  type LockedImage,
  type LockedInstaller,
  type LockedPackageRepository,
  type Member,
} from './metadata.js'
import { type MemberInput, planLayout, type RemoteSource } from './plan-layout.js'
import { type ResolvedImage, resolveImage } from './resolve-images.js'
import { registryBlobSource, urlSize, urlSource } from './sources.js'
import { readStageFiles, type StageFiles } from './stage-files.js'
import { VolumeSet, volumePaths } from './volumes.js'
import { writeBundleFile } from './write-bundle-file.js'

/**
 * `bundle`: a definition in, one verifiable bundle file out. Resolve everything to digests and sizes first (charts,
 * the images they render, the definition's images, files, stages), plan the tar layout, check the disk, then write:
 * small members directly and every blob and file straight from its source into its planned place, in parallel, with a
 * journal so a rerun of an interrupted bundle continues where it stopped. The result is byte-identical for the same
 * definition and upstream content.
 */
export interface CreateBundleOptions {
  spec: BundleSpec
  registry: RegistryClient
  http: HttpClient
  /** Output file; default <dir>/<name>-<version>.tar */
  output?: string
  outputDir?: string
  /** Split into volumes of at most this many bytes (name.tar.000, .001, …). */
  splitSize?: number
  /** Parallel downloads. */
  concurrency?: number
  /** helm binary for image discovery. */
  helm?: string
  /** Extra --set style values per chart name, merged over the definition's values. */
  chartValues?: Record<string, Record<string, unknown>>
  /** GnuPG home of the key that signs the package repositories (default: the user's own, created once). */
  signingKey?: string
  /** URL prefix → keyring for package mirrors that sign with their own key (see plan-repository.ts). */
  mirrorKeyrings?: Record<string, string>
  /** Where package indices are cached between runs (default: $XDG_CACHE_HOME/astrago-airgap/packages). */
  packageCacheDir?: string
  /**
   * The self-contained installer to carry as the `installer` member: an executable file, or `{ directory }` to take the
   * astrago-airgap-linux-<arch> that scripts/build-installer wrote there for the first of the bundle's linux platforms
   * it has one for (none: no installer). Absent: no installer.
   */
  installer?: string | { directory: string }
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export interface CreateBundleResult {
  path: string
  volumes: string[]
  name: string
  version: string
  size: number
  images: number
  charts: number
  files: number
  /** Package files over all package repositories. */
  packages: number
  /** The installer the bundle carries, if any. */
  installer?: LockedInstaller
  blobs: number
  blobBytes: number
  dedupSavedBytes: number
  fetchedBytes: number
  reusedBytes: number
  resumed: boolean
  durationMs: number
  bytesPerSecond: number
}

const sha256hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/**
 * An image an operator completes at run time (the NVIDIA driver's `-<node OS>`) must be listed, completed, under the
 * chart's extraImages; say so when none is, with an example.
 */
function warnIncompleteImages(chart: ChartSpec, completed: DiscoveredImage[], sink: EventSink): void {
  for (const image of completed) {
    if (chart.extraImages.some((extra) => extra.startsWith(`${image.ref}-`))) continue
    sink.emit({
      type: 'log',
      level: 'warn',
      code: 'W_IMAGE_COMPLETED_AT_RUN_TIME',
      message: `Chart ${chart.name}: ${image.sources.join(', ')} runs ${image.ref}-<node OS> (the operator adds the OS of each node at run time), and no such image is under the chart's extraImages, so the bundle has none: list the ones the nodes need, e.g. ${image.ref}-ubuntu22.04.`,
    })
  }
}

interface PreparedChart {
  spec: ChartSpec
  bytes: Buffer
  sha256: string
  metadata: { name: string; version: string; appVersion?: string; description?: string; apiVersion?: string }
  images: { ref: string; sources: string[] }[]
}

export async function createBundle(options: CreateBundleOptions): Promise<CreateBundleResult> {
  const started = Date.now()
  const { spec, sink, signal } = options
  const concurrency = options.concurrency ?? 8
  const root = new Task(sink, `Bundle ${spec.metadata.name} ${spec.metadata.version}`)
  const output = resolve(
    options.output ??
      join(
        options.outputDir ?? process.cwd(),
        defaultBundleFileName(spec.metadata.name, spec.metadata.version),
      ),
  )
  try {
    // 1. Charts, and the images they render.
    const charts = await root
      .child('Resolve charts', { total: spec.charts.length, unit: 'items' })
      .run(async (task) => {
        const indexCache = new Map<string, Promise<RepoIndex>>()
        const helm = spec.charts.some((c) => c.discoverImages) ? findHelm(options.helm) : undefined
        const prepared: PreparedChart[] = []
        for (const chart of spec.charts) {
          const sub = task.child(`${chart.name} ${chart.version}`)
          prepared.push(
            await sub.run(
              async () => {
                const downloaded = await downloadChart(options.http, chart, {
                  signal,
                  indexCache,
                  sink,
                  ociPull: (ref, s) => pullChartArtifact(options.registry, ref, s),
                })
                const values = { ...chart.values, ...options.chartValues?.[chart.name] }
                const discovered = chart.discoverImages
                  ? await discoverImages(downloaded.bytes, {
                      helmBinary: helm!,
                      values,
                      releaseName: chart.name,
                      namespace: chart.name,
                      chartName: chart.name,
                      signal,
                    })
                  : { images: [], completedAtRunTime: [] }
                const images = discovered.images
                for (const extra of chart.extraImages) images.push({ ref: extra, sources: ['extraImages'] })
                warnIncompleteImages(chart, discovered.completedAtRunTime, sink)
                return {
                  spec: chart,
                  bytes: downloaded.bytes,
                  sha256: downloaded.sha256,
                  metadata: downloaded.metadata,
                  images,
                }
              },
              (p) => `${p.images.length} images`,
            ),
          )
          task.progress(prepared.length, spec.charts.length, 'items', 0)
        }
        return prepared
      })

    // The stages' own manifests name images too (workloads written in manifests/, not in charts).
    const stages = await readStageFiles(spec)
    const stageImages = collectStageImages(stages, sink)

    // 2. Images: the definition's, the charts' and the stages', each resolved once (by normalized name).
    const requests = new Map<string, { source: string; platforms: string[]; from: string[] }>()
    const addRequest = (source: string, platforms: string[], from: string) => {
      let key: string
      try {
        key = formatImageReference(parseImageReference(source))
      } catch (error) {
        throw new AirgapError('E_INPUT', `${from} names an invalid image: ${(error as Error).message}`, {
          cause: error,
        })
      }
      const existing = requests.get(key)
      if (existing) existing.from.push(from)
      else requests.set(key, { source: key, platforms, from: [from] })
    }
    for (const image of spec.images) addRequest(image.ref, image.platforms ?? spec.platforms, 'definition')
    for (const chart of charts) {
      for (const image of chart.images)
        addRequest(image.ref, spec.platforms, `chart ${chart.spec.name} (${image.sources.join(', ')})`)
    }
    for (const image of stageImages) {
      addRequest(image.ref, spec.platforms, `stage manifests (${image.sources.join(', ')})`)
    }
    const imageList = [...requests.values()].sort((a, b) => a.source.localeCompare(b.source))
    const resolved = await root.child('Resolve images', { total: imageList.length, unit: 'items' }).run(
      async (task) => {
        const out: ResolvedImage[] = new Array(imageList.length)
        let done = 0
        await runPool(
          imageList.map((request, i) => ({ request, i })),
          Math.min(concurrency, 8),
          async ({ request, i }) => {
            try {
              out[i] = await resolveImage(options.registry, request, signal)
            } catch (error) {
              if (error instanceof AirgapError && !request.from.includes('definition')) {
                error.message = `${error.message} (rendered by ${request.from.join('; ')})`
              }
              throw error
            }
            task.progress(++done, imageList.length, 'items')
          },
          signal,
        )
        return out
      },
      (r) => `${r.length} images`,
    )

    // 3. Files: sizes from the definition or a HEAD request.
    const files = await root
      .child('Resolve files', { total: spec.files.length, unit: 'items' })
      .run(async () => {
        const sized: { url: string; path: string; sha256: string; size: number }[] = []
        for (const file of spec.files)
          sized.push({ ...file, size: file.size ?? (await urlSize(options.http, file.url, signal)) })
        return sized
      })

    // 4. Package repositories: each closure resolved against the signed upstream indices, its metadata signed.
    const repositories = spec.packages.length
      ? await root.child('Resolve packages', { total: spec.packages.length, unit: 'items' }).run(
          (task) => planPackageRepositories(spec, options, task),
          (r) => `${r.reduce((a, x) => a + x.packages.length, 0)} packages in ${r.length} repositories`,
        )
      : []

    // 5. The installer, if the bundle carries one.
    const installer =
      options.installer === undefined
        ? undefined
        : await root.child('Installer').run(
            () => resolveInstaller(options.installer!, spec.platforms, options.toolVersion, sink, signal),
            (i) =>
              i ? `${i.locked.platform}, ${formatBytes(i.locked.size)}` : 'none built for these platforms',
          )

    // 6. The members, in a fixed order: bundle.json, the installer, the OCI layout, charts, files, packages, stages.
    const { members, metadata } = assemble(
      spec,
      options,
      resolved,
      charts,
      files,
      repositories,
      stages,
      installer,
    )
    const plan = planLayout(members)

    // 7. Disk, journal, write.
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
      for (const repository of repositories.filter((r) => r.packageKeyrings?.length)) {
        const folder = packageRepositoryPath(repository.kind, repository.name)
        await root
          .child(`Check the package signatures of ${folder}`, {
            total: repository.packages.length,
            unit: 'items',
          })
          .run(
            (task) => checkPackageSignatures(plan, volumes, repository, folder, task),
            () => `${repository.packages.length} packages signed by the source's keys`,
          )
      }
    } finally {
      await volumes.close()
    }
    const finalPaths = options.splitSize ? volumePaths(output, volumes.paths.length) : [output]
    await removeVolumes(output)
    for (let i = 0; i < volumes.paths.length; i++) await rename(volumes.paths[i]!, finalPaths[i]!)
    await journal.remove()

    const durationMs = Date.now() - started
    const result: CreateBundleResult = {
      path: finalPaths[0]!,
      volumes: finalPaths,
      name: spec.metadata.name,
      version: spec.metadata.version,
      size: plan.size,
      images: metadata.images.length,
      charts: metadata.charts.length,
      files: metadata.files.length,
      packages: repositories.reduce((a, r) => a + r.packages.length, 0),
      ...(metadata.installer ? { installer: metadata.installer } : {}),
      blobs: plan.members.filter((m) => m.path.startsWith('oci/blobs/')).length,
      blobBytes: metadata.totals.blobBytes,
      dedupSavedBytes: Math.max(0, metadata.totals.imageBytesWithoutDedup - metadata.totals.blobBytes),
      fetchedBytes: written.fetchedBytes,
      reusedBytes: written.reusedBytes,
      resumed,
      durationMs,
      bytesPerSecond: Math.round(written.fetchedBytes / Math.max(durationMs / 1000, 0.001)),
    }
    root.end('done', `${result.path} (${formatBytes(result.size)})`)
    return result
  } catch (error) {
    root.end('failed', error instanceof Error ? error.message : String(error))
    throw error
  }
}

/** Images named by workloads in the stages' plain manifests (stage.yaml, the stage's own settings, excluded). */
function collectStageImages(stages: StageFiles[], sink: EventSink): { ref: string; sources: string[] }[] {
  const collector = new ImageCollector()
  for (const stage of stages) {
    for (const file of stage.files) {
      if (!/\.ya?ml$/.test(file.relative) || file.relative === 'stage.yaml') continue
      try {
        collector.addDocuments(file.bytes.toString('utf8'), `${stage.name}/${file.relative}`)
      } catch (error) {
        sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_STAGE_YAML',
          message: `Could not read images from ${stage.name}/${file.relative}: ${(error as Error).message}`,
        })
      }
    }
  }
  // An image chosen by the site values at install time (${{ site.… }}) cannot be bundled by name: say so.
  return collector.result().filter((image) => {
    if (!image.ref.includes('${{')) return true
    sink.emit({
      type: 'log',
      level: 'warn',
      code: 'W_STAGE_IMAGE_TEMPLATED',
      message: `${image.sources.join(', ')} names the image "${image.ref}", chosen by site values at install time; list the images it can be under images: in the definition.`,
    })
    return false
  })
}

function assemble(
  spec: BundleSpec,
  options: CreateBundleOptions,
  images: ResolvedImage[],
  charts: PreparedChart[],
  files: { url: string; path: string; sha256: string; size: number }[],
  repositories: PlannedPackageRepository[],
  stages: StageFiles[],
  installer: PreparedInstaller | undefined,
): { members: MemberInput[]; metadata: BundleMetadata } {
  const blobs = new Map<string, MemberInput>()
  const bytesMember = (path: string, bytes: Buffer): MemberInput => ({
    path,
    size: bytes.length,
    sha256: sha256hex(bytes),
    content: { kind: 'bytes', bytes },
  })
  const addBytesBlob = (digest: string, bytes: Buffer) => {
    if (!blobs.has(digest)) blobs.set(digest, bytesMember(blobPath(digest), bytes))
  }
  const indexEntries: {
    mediaType: string
    digest: string
    size: number
    annotations: Record<string, string>
  }[] = []
  const lockedImages: LockedImage[] = []
  let withoutDedup = 0
  for (const image of images) {
    for (const doc of image.documents) addBytesBlob(doc.digest, doc.bytes)
    let imageBytes = 0
    for (const blob of image.blobs) {
      imageBytes += blob.size
      const small = image.fetched.get(blob.digest)
      if (small) addBytesBlob(blob.digest, small)
      else if (!blobs.has(blob.digest)) {
        blobs.set(blob.digest, {
          path: blobPath(blob.digest),
          size: blob.size,
          sha256: blob.digest.slice('sha256:'.length),
          content: {
            kind: 'remote',
            source: registryBlobSource(
              options.registry,
              { registry: image.ref.registry, repository: image.ref.repository },
              blob.digest,
            ),
          },
        })
      }
    }
    withoutDedup += imageBytes
    const reference = image.tag ? `${image.name}:${image.tag}` : `${image.name}@${image.upstreamDigest}`
    const top = image.documents[0]!
    indexEntries.push({
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.bytes.length,
      annotations: { 'org.opencontainers.image.ref.name': reference, 'io.containerd.image.name': reference },
    })
    lockedImages.push({
      source: image.source,
      name: image.name,
      ...(image.tag ? { tag: image.tag } : {}),
      digest: image.digest,
      upstreamDigest: image.upstreamDigest,
      mediaType: image.mediaType,
      platforms: image.platforms,
      manifests: image.manifests,
      size: imageBytes,
      from: image.from,
    })
  }

  const lockedCharts: LockedChart[] = []
  const chartMembers: MemberInput[] = []
  for (const chart of charts) {
    const artifact = buildChartArtifact(chart.bytes, chart.metadata)
    addBytesBlob(artifact.configDigest, artifact.config)
    addBytesBlob(artifact.chartDigest, chart.bytes)
    addBytesBlob(artifact.manifestDigest, artifact.manifest)
    const repository = chartRepository(chart.metadata.name)
    const reference = `${repository}:${chart.metadata.version}`
    indexEntries.push({
      mediaType: MediaType.ociManifest,
      digest: artifact.manifestDigest,
      size: artifact.manifest.length,
      annotations: {
        'org.opencontainers.image.ref.name': reference,
        'io.astrago.airgap.chart': chart.metadata.name,
      },
    })
    chartMembers.push(bytesMember(chartPath(chart.metadata.name, chart.metadata.version), chart.bytes))
    lockedCharts.push({
      name: chart.metadata.name,
      version: chart.metadata.version,
      ...(chart.metadata.appVersion ? { appVersion: chart.metadata.appVersion } : {}),
      repo: chart.spec.repo,
      sha256: chart.sha256,
      path: chartPath(chart.metadata.name, chart.metadata.version),
      oci: { repository, tag: chart.metadata.version, digest: artifact.manifestDigest },
      images: chart.images.map((i) => formatImageReference(parseImageReference(i.ref))),
    })
  }
  const chartsIndex = buildRepoIndex(
    charts.map((c) => ({
      name: c.metadata.name,
      version: c.metadata.version,
      appVersion: c.metadata.appVersion,
      description: c.metadata.description,
      apiVersion: c.metadata.apiVersion,
      digest: c.sha256,
      fileName: chartFileName(c.metadata.name, c.metadata.version),
    })),
  )

  indexEntries.sort((a, b) => {
    const x = a.annotations['org.opencontainers.image.ref.name']!
    const y = b.annotations['org.opencontainers.image.ref.name']!
    return x < y ? -1 : x > y ? 1 : 0
  })
  const ociIndex = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: indexEntries }, null, 2),
  )
  const ociLayout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  // Small blobs first (manifests, configs, charts), then layers by digest: deterministic, and the small ones cluster.
  const blobList = [...blobs.values()].sort((a, b) =>
    a.content.kind !== b.content.kind
      ? a.content.kind === 'bytes'
        ? -1
        : 1
      : a.path < b.path
        ? -1
        : a.path > b.path
          ? 1
          : 0,
  )
  const fileMembers: MemberInput[] = files.map((f) => ({
    path: filePath(f.path),
    size: f.size,
    sha256: f.sha256,
    content: { kind: 'remote', source: urlSource(options.http, f.url) },
  }))
  const lockedRepositories: LockedPackageRepository[] = []
  const packageMembers: MemberInput[] = []
  for (const repository of repositories) {
    const folder = packageRepositoryPath(repository.kind, repository.name)
    const metadataFiles = [...repository.metadata].sort((a, b) => compareText(a.path, b.path))
    for (const file of metadataFiles) packageMembers.push(bytesMember(`${folder}/${file.path}`, file.bytes))
    const packages = [...repository.packages].sort((a, b) => compareText(a.path, b.path))
    for (const pkg of packages) {
      packageMembers.push({
        path: `${folder}/${pkg.path}`,
        size: pkg.size,
        sha256: pkg.sha256,
        content: { kind: 'remote', source: urlSource(options.http, pkg.url) },
      })
    }
    lockedRepositories.push({
      kind: repository.kind,
      name: repository.name,
      path: folder,
      requested: repository.requested ?? [],
      details: repository.details,
      metadata: metadataFiles.map((f) => f.path),
      packages: packages.map((p) => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        path: p.path,
        size: p.size,
        sha256: p.sha256,
        url: p.url,
        ...(p.reason ? { reason: p.reason } : {}),
      })),
    })
  }
  const stageMembers = stages.flatMap((s) =>
    s.files.map((f) => bytesMember(stageFilePath(s.name, f.relative), f.bytes)),
  )

  const rest: MemberInput[] = [
    ...(installer
      ? [
          {
            path: INSTALLER,
            size: installer.locked.size,
            sha256: installer.locked.sha256,
            mode: 0o755,
            content: { kind: 'remote', source: localFileSource(installer.file) },
          } satisfies MemberInput,
        ]
      : []),
    bytesMember(OCI_LAYOUT_FILE, ociLayout),
    bytesMember(OCI_INDEX, ociIndex),
    ...blobList,
    bytesMember(CHARTS_INDEX, Buffer.from(chartsIndex)),
    ...chartMembers,
    ...fileMembers,
    ...packageMembers,
    ...stageMembers,
  ]
  const inventory: Member[] = rest.map((m) => ({ path: m.path, size: m.size, sha256: m.sha256 }))
  const metadata: BundleMetadata = {
    format: BUNDLE_FORMAT,
    name: spec.metadata.name,
    version: spec.metadata.version,
    ...(spec.metadata.description ? { description: spec.metadata.description } : {}),
    createdBy: `astrago-airgap ${options.toolVersion}`,
    platforms: spec.platforms,
    ...(installer ? { installer: installer.locked } : {}),
    images: lockedImages,
    charts: lockedCharts,
    files: files.map((f) => ({ url: f.url, path: filePath(f.path), sha256: f.sha256, size: f.size })),
    ...(lockedRepositories.length ? { packages: lockedRepositories } : {}),
    stages: stages.map((s) => ({
      name: s.name,
      files: s.files.map((f) => stageFilePath(s.name, f.relative)),
    })),
    members: inventory,
    totals: {
      contentBytes: inventory.reduce((a, m) => a + m.size, 0),
      imageBytesWithoutDedup: withoutDedup,
      blobBytes: blobList.reduce((a, m) => a + m.size, 0),
    },
  }
  const bundleJson = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`)
  return { members: [bytesMember(BUNDLE_JSON, bundleJson), ...rest], metadata }
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

interface PreparedInstaller {
  /** The executable on this machine. */
  file: string
  locked: LockedInstaller
}

/** ELF e_machine values of the platforms the installer is built for: EM_X86_64 and EM_AARCH64. */
const ELF_MACHINES: Record<number, string> = { 62: 'linux/amd64', 183: 'linux/arm64' }

/**
 * Finds and checks the installer: a Linux executable (its platform from the ELF header) and its sha256. With
 * `{ directory }`, the one for the first of the bundle's linux platforms found there, or none.
 */
async function resolveInstaller(
  option: string | { directory: string },
  platforms: string[],
  toolVersion: string,
  sink: EventSink,
  signal?: AbortSignal,
): Promise<PreparedInstaller | undefined> {
  let file: string
  if (typeof option === 'string') {
    file = resolve(option)
  } else {
    const arches = platforms.flatMap((p) => /^linux\/(amd64|arm64)(\/|$)/.exec(p)?.[1] ?? [])
    const found = [...new Set(arches)]
      .map((arch) => join(option.directory, installerFileName(arch)))
      .find((path) => existsSync(path))
    if (!found) return undefined
    file = found
  }
  const info = await stat(file).catch((error: unknown) => {
    throw new AirgapError('E_INPUT', `The installer ${file} does not exist.`, {
      hints: ['Build it with scripts/build-installer, or leave it out with --no-installer.'],
      cause: error,
    })
  })
  const platform = info.isFile() ? await readElfPlatform(file) : undefined
  if (!platform) {
    throw new AirgapError(
      'E_INPUT',
      `The installer ${file} is not a Linux amd64 or arm64 executable (one built by scripts/build-installer).`,
    )
  }
  if (!platforms.some((p) => p === platform || p.startsWith(`${platform}/`))) {
    sink.emit({
      type: 'log',
      level: 'warn',
      code: 'W_INSTALLER_PLATFORM',
      message: `The installer ${file} runs on ${platform}, which is not one of the bundle's platforms (${platforms.join(', ')}).`,
    })
  }
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer)
  return {
    file,
    locked: { path: INSTALLER, size: info.size, sha256: hash.digest('hex'), platform, version: toolVersion },
  }
}

/** linux/amd64 or linux/arm64 from the ELF header of a 64-bit little-endian executable, else undefined. */
async function readElfPlatform(file: string): Promise<string | undefined> {
  const handle = await open(file, 'r')
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(20), 0, 20, 0)
    // Magic, 64-bit class, little-endian, and an executable (ET_EXEC, or ET_DYN as position-independent ones are).
    const type = bytesRead === 20 ? buffer.readUInt16LE(16) : 0
    const isExecutable =
      bytesRead === 20 &&
      buffer.readUInt32BE(0) === 0x7f454c46 &&
      buffer[4] === 2 &&
      buffer[5] === 1 &&
      (type === 2 || type === 3)
    return isExecutable ? ELF_MACHINES[buffer.readUInt16LE(18)] : undefined
  } finally {
    await handle.close()
  }
}

/** A file on this machine as a member source (it is read, checked against its sha256, like any download). */
function localFileSource(file: string): RemoteSource {
  return {
    describe: file,
    open: async (offset) => ({ body: createReadStream(file, { start: offset }), partial: true }),
  }
}

/** Resolves and signs every package repository of the definition, one subtask each. */
async function planPackageRepositories(
  spec: BundleSpec,
  options: CreateBundleOptions,
  task: Task,
): Promise<PlannedPackageRepository[]> {
  const key = await loadSigningKey(options.signingKey)
  const base = dirname(spec.source)
  const cacheDir =
    options.packageCacheDir ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap', 'packages')
  const planned: PlannedPackageRepository[] = []
  try {
    for (const repository of spec.packages) {
      planned.push(
        await task.child(`${repository.apt ? 'apt' : 'rpm'} ${repository.name}`).run(
          () =>
            planPackageRepository(repository, {
              http: options.http,
              key,
              base,
              cacheDir,
              ...(options.mirrorKeyrings ? { mirrorKeyrings: options.mirrorKeyrings } : {}),
              ...(options.signal ? { signal: options.signal } : {}),
            }),
          (r) => `${r.packages.length} packages, ${formatBytes(r.packages.reduce((a, p) => a + p.size, 0))}`,
        ),
      )
      task.progress(planned.length, spec.packages.length, 'items', 0)
    }
  } finally {
    await stopGpgAgent(key.homeDir)
  }
  return planned
}

/** Copies each package of the repository out of the bundle being written, in batches, for rpmkeys to check. */
async function checkPackageSignatures(
  plan: ReturnType<typeof planLayout>,
  volumes: VolumeSet,
  repository: PlannedPackageRepository,
  folder: string,
  task: Task,
): Promise<void> {
  const members = new Map(plan.members.map((m) => [m.path, m]))
  const work = await mkdtemp(join(tmpdir(), 'astrago-rpm-check-'))
  try {
    const batch = 50
    for (let at = 0; at < repository.packages.length; at += batch) {
      const files = []
      for (const [i, pkg] of repository.packages.slice(at, at + batch).entries()) {
        const member = members.get(`${folder}/${pkg.path}`)!
        const file = join(work, `${i}.rpm`)
        await pipeline(volumes.createReadStream(member.dataOffset, member.size), createWriteStream(file))
        files.push({ file, label: `${pkg.name} ${pkg.version} (${pkg.architecture})` })
      }
      await checkRpmSignatures(files, repository.packageKeyrings!, folder)
      task.progress(Math.min(at + batch, repository.packages.length), repository.packages.length, 'items')
      await Promise.all(files.map((f) => rm(f.file, { force: true })))
    }
  } finally {
    await rm(work, { recursive: true, force: true })
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
