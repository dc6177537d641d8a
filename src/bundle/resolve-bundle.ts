import { formatBytes } from '../events/format.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import type { HttpClient } from '../net/http.js'
import type { RegistryClient } from '../oci/registry-client.js'
import type { BundleSpec } from '../spec/types.js'
import { assembleLock } from './assemble-lock.js'
import type { BundleLock, ResolvedFile } from './bundle-lock.js'
import { collectImageRequests, collectStageImages, resolveImageRequests } from './resolve-bundle-images.js'
import type { ResolveChartsOptions } from './resolve-charts.js'
import type { ResolvePackagesOptions } from './resolve-packages.js'
import { urlSize } from './sources.js'
import { readStageFiles } from './stage-files.js'

/**
 * The first half of `bundle`: a definition in, its lock out. Charts to versions (and the images they render), every
 * image to digests, files to sizes, package lists to their closure, the installer to its hash, each a task under
 * `root`; then the members and bundle.json are assembled. Nothing is written to the output here. The chart, package and
 * installer code (and the tar, git and package-index code under it) is loaded only for a definition that has them:
 * a bundle of images only runs in less memory.
 */
export interface ResolveBundleOptions extends ResolveChartsOptions, ResolvePackagesOptions {
  spec: BundleSpec
  registry: RegistryClient
  http: HttpClient
  /** Parallel requests (image resolution uses at most 8). */
  concurrency?: number
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

export async function resolveBundle(options: ResolveBundleOptions, root: Task): Promise<BundleLock> {
  const { spec, sink, signal } = options
  const concurrency = options.concurrency ?? 8

  // Charts, and the images they render.
  const charts = await root
    .child('bundle.charts', 'Resolve charts', { total: spec.charts.length, unit: 'items' })
    .run(async (task) =>
      spec.charts.length ? (await import('./resolve-charts.js')).resolveCharts(spec, options, task) : [],
    )

  // The stages' own manifests name images too (workloads written in manifests/, not in charts).
  const stages = await readStageFiles(spec)
  const stageImages = collectStageImages(stages, sink)

  // Images: the definition's, the charts' and the stages', each resolved once (by normalized name).
  const imageList = collectImageRequests(spec, charts, stageImages)
  const imagesTask = root.child('bundle.images', 'Resolve images', { total: imageList.length, unit: 'items' })
  const images = await imagesTask.run(
    (task) => resolveImageRequests(options.registry, imageList, concurrency, task, signal),
    (r) => `${r.length} images`,
  )

  // Files: sizes from the definition or a HEAD request.
  const files = await root
    .child('bundle.files', 'Resolve files', { total: spec.files.length, unit: 'items' })
    .run(async () => {
      const sized: ResolvedFile[] = []
      for (const file of spec.files)
        sized.push({ ...file, size: file.size ?? (await urlSize(options.http, file.url, signal)) })
      return sized
    })

  // Package repositories: each closure resolved against the signed upstream indices, its metadata signed.
  const repositories = spec.packages.length
    ? await root
        .child('bundle.packages', 'Resolve packages', { total: spec.packages.length, unit: 'items' })
        .run(
          async (task) =>
            (await import('./resolve-packages.js')).resolvePackageRepositories(spec, options, task),
          (r) => `${r.reduce((a, x) => a + x.packages.length, 0)} packages in ${r.length} repositories`,
        )
    : []

  // The installer, if the bundle carries one.
  const installer =
    options.installer === undefined
      ? undefined
      : await root.child('bundle.installer', 'Installer').run(
          async () =>
            (await import('./resolve-installer.js')).resolveInstaller(
              options.installer!,
              spec.platforms,
              options.toolVersion,
              sink,
              signal,
            ),
          (i) =>
            i ? `${i.locked.platform}, ${formatBytes(i.locked.size)}` : 'none built for these platforms',
        )

  // The members, in a fixed order: bundle.json, the installer, the OCI layout, charts, files, packages, stages.
  return assembleLock({
    spec,
    registry: options.registry,
    http: options.http,
    toolVersion: options.toolVersion,
    images,
    charts,
    files,
    repositories,
    stages,
    installer,
  })
}
