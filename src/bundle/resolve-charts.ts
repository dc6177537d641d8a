import { type DiscoveredImage, discoverImages } from '../charts/discover-images.js'
import { downloadChart } from '../charts/download.js'
import type { RepoIndex } from '../charts/repo-index.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { findHelm } from '../helm/find-helm.js'
import type { HttpClient } from '../net/http.js'
import { pullChartArtifact } from '../oci/chart-artifact.js'
import type { RegistryClient } from '../oci/registry-client.js'
import { type BundleSpec, type ChartSpec, isRepoChart } from '../spec/types.js'
import {
  type ChartSourceRecord,
  type ResolveSourceChartOptions,
  resolveSourceChart,
} from './resolve-source-chart.js'

/**
 * The chart step of resolving a bundle: each chart of the definition downloaded at its version (from a repository or
 * an OCI reference) or packaged from its source (a git repository at a commit, a local folder; resolve-source-chart.ts),
 * and the images it runs found by rendering it with helm, plus the chart's extraImages.
 */
export interface ResolveChartsOptions
  extends Pick<ResolveSourceChartOptions, 'urlMirrors' | 'credentials' | 'gitCacheDir'> {
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
  /** For a chart from git or a local folder: where it came from and what was vendored into it. */
  source?: ChartSourceRecord
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
  const ociPull = (ref: string, s?: AbortSignal) => pullChartArtifact(options.registry, ref, s)
  for (const [index, chart] of spec.charts.entries()) {
    const sub = task.child('bundle.chart', chartTitle(chart), {
      data: { chart: chart.name, ...(chart.version ? { version: chart.version } : {}) },
    })
    prepared.push(
      await sub.run(
        async () => {
          let got: Omit<PreparedChart, 'images'>
          if (isRepoChart(chart)) {
            const downloaded = await downloadChart(options.http, chart, { signal, indexCache, sink, ociPull })
            got = {
              spec: chart,
              bytes: downloaded.bytes,
              sha256: downloaded.sha256,
              metadata: downloaded.metadata,
            }
          } else {
            const built = await resolveSourceChart(spec, index, chart, {
              http: options.http,
              ...(options.urlMirrors ? { urlMirrors: options.urlMirrors } : {}),
              ...(options.credentials ? { credentials: options.credentials } : {}),
              ...(options.gitCacheDir ? { gitCacheDir: options.gitCacheDir } : {}),
              ociPull,
              indexCache,
              sink,
              ...(signal ? { signal } : {}),
            })
            got = {
              spec: chart,
              bytes: built.chart.bytes,
              sha256: built.chart.sha256,
              metadata: built.chart.metadata,
              source: built.record,
            }
          }
          const values = { ...chart.values, ...options.chartValues?.[chart.name] }
          const discovered = chart.discoverImages
            ? await discoverImages(got.bytes, {
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
          return { ...got, images }
        },
        (p) =>
          p.source?.git
            ? `${p.metadata.version} at commit ${p.source.git.commit.slice(0, 12)}, ${p.images.length} images`
            : `${p.images.length} images`,
      ),
    )
    task.progress(prepared.length, spec.charts.length, 'items', 0)
  }
  return prepared
}

/** How a chart is named in the task tree: name and version, or where it is packaged from. */
function chartTitle(chart: ChartSpec): string {
  if (isRepoChart(chart)) return `${chart.name} ${chart.version}`
  if ('git' in chart) return `${chart.name} from git ${chart.git.url} ${chart.git.ref}`
  return `${chart.name} from ${chart.path}`
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
      data: { chart: chart.name, image: image.ref },
    })
  }
}
