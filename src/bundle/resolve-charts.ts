import { type DiscoveredImage, discoverImages } from '../charts/discover-images.js'
import { downloadChart } from '../charts/download.js'
import type { RepoIndex } from '../charts/repo-index.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { findHelm } from '../helm/find-helm.js'
import type { HttpClient } from '../net/http.js'
import { pullChartArtifact } from '../oci/chart-artifact.js'
import type { RegistryClient } from '../oci/registry-client.js'
import type { BundleSpec, ChartSpec } from '../spec/types.js'

/**
 * The chart step of resolving a bundle: each chart of the definition downloaded at its version (from a repository or
 * an OCI reference), and the images it runs found by rendering it with helm, plus the chart's extraImages.
 */
export interface ResolveChartsOptions {
  http: HttpClient
  registry: RegistryClient
  /** helm binary for image discovery. */
  helm?: string
  /** Extra --set style values per chart name, merged over the definition's values. */
  chartValues?: Record<string, Record<string, unknown>>
  sink: EventSink
  signal?: AbortSignal
}

export interface PreparedChart {
  spec: ChartSpec
  bytes: Buffer
  sha256: string
  metadata: { name: string; version: string; appVersion?: string; description?: string; apiVersion?: string }
  images: { ref: string; sources: string[] }[]
}

/** Downloads every chart of the definition and lists its images, one subtask each, in the definition's order. */
export async function resolveCharts(
  spec: BundleSpec,
  options: ResolveChartsOptions,
  task: Task,
): Promise<PreparedChart[]> {
  const { sink, signal } = options
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
}

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
