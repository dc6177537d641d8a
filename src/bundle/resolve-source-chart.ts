/**
 * A chart of the definition that no chart repository publishes: from a git repository (its ref resolved to a commit)
 * or a local folder. It is packaged reproducibly with its dependencies vendored (src/charts/chart-source.ts), checked
 * against the entry's name and version, and recorded with where it came from. Every error is given the file:line:col
 * of the entry's field at fault (the git url or ref, the path, the dependencies of the chart's folder).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import {
  type ChartSource,
  packageChartSource,
  resolveChartSource,
  type SourceChart,
} from '../charts/chart-source.js'
import type { OciChartPuller } from '../charts/download.js'
import type { GitCredential } from '../charts/git-command.js'
import type { RepoIndex } from '../charts/repo-index.js'
import { AirgapError, isAirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import type { HttpClient } from '../net/http.js'
import { atDefinitionField, locateDefinitionField } from '../spec/definition-position.js'
import type { BundleSpec, GitChartSpec, LocalChartSpec } from '../spec/types.js'
import type { LockedChart } from './metadata.js'

export interface ResolveSourceChartOptions {
  http: HttpClient
  /** URL prefix → mirror (as --mirror): applies to git URLs as to chart repositories and files. */
  urlMirrors?: Record<string, string>
  /** Credentials by host, as --username HOST=USER with --password-stdin; otherwise git's own configuration. */
  credentials?: Record<string, GitCredential>
  /** Where fetched git repositories are kept between runs (default ~/.cache/astrago-airgap/git). */
  gitCacheDir?: string
  ociPull?: OciChartPuller
  indexCache?: Map<string, Promise<RepoIndex>>
  sink: EventSink
  signal?: AbortSignal
}

/** Where the chart came from, as bundle.json records it. */
export type ChartSourceRecord = Pick<LockedChart, 'git' | 'local' | 'dependencies'>

export interface ResolvedSourceChart {
  chart: SourceChart
  record: ChartSourceRecord
}

/** Packages chart number `index` of the definition (a `git:` or `path:` entry). */
export async function resolveSourceChart(
  spec: BundleSpec,
  index: number,
  chart: GitChartSpec | LocalChartSpec,
  options: ResolveSourceChartOptions,
): Promise<ResolvedSourceChart> {
  const source: ChartSource = 'git' in chart ? { git: chart.git } : { local: { dir: chart.path } }
  const workDir = await mkdtemp(join(tmpdir(), 'astrago-airgap-chart-'))
  try {
    const sourceOptions = {
      http: options.http,
      workDir,
      baseDir: dirname(spec.source),
      ...(options.gitCacheDir ? { cacheDir: options.gitCacheDir } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.urlMirrors ? { urlMirrors: options.urlMirrors } : {}),
      ...(options.ociPull ? { ociPull: options.ociPull } : {}),
      ...(options.indexCache ? { indexCache: options.indexCache } : {}),
      sink: options.sink,
      ...(options.signal ? { signal: options.signal } : {}),
    }
    const resolved = await resolveChartSource(source, sourceOptions)
    const packaged = await packageChartSource(resolved, sourceOptions)
    checkNameAndVersion(chart, packaged, resolved.label)
    return { chart: packaged, record: recordOf(packaged) }
  } catch (error) {
    if (!isAirgapError(error) || error.code === 'E_INTERRUPTED') throw error
    throw atDefinitionField(
      error,
      await locateDefinitionField(spec.source, fieldAtFault(index, chart, error)),
    )
  } finally {
    await rm(workDir, { recursive: true, force: true })
  }
}

function checkNameAndVersion(
  chart: GitChartSpec | LocalChartSpec,
  packaged: SourceChart,
  label: string,
): void {
  const { name, version } = packaged.metadata
  if (name !== chart.name) {
    throw new AirgapError(
      'E_INPUT',
      `${label}: its Chart.yaml names the chart "${name}", not "${chart.name}".`,
      {
        data: { field: 'name', expected: chart.name, found: name },
        hints: [
          `Write name: ${name} (stages name a chart by the name in its Chart.yaml), or point the entry at the chart ${chart.name}.`,
        ],
      },
    )
  }
  if (chart.version !== undefined && version !== chart.version) {
    throw new AirgapError(
      'E_INPUT',
      `${label}: its Chart.yaml has version ${version}, not ${chart.version}.`,
      {
        data: { field: 'version', expected: chart.version, found: version },
        hints: [`Write version: "${version}", or leave version out to take whatever Chart.yaml says.`],
      },
    )
  }
}

/** The definition field an error of this chart is about, from the error's data.field. */
function fieldAtFault(index: number, chart: GitChartSpec | LocalChartSpec, error: AirgapError): string {
  const entry = `charts[${index}]`
  const field = typeof error.data?.field === 'string' ? error.data.field : undefined
  if (field === 'name' || field === 'version') return `${entry}.${field}`
  if ('git' in chart) {
    if (field === 'url' || field === 'ref' || field === 'path') return `${entry}.git.${field}`
    return `${entry}.git`
  }
  return `${entry}.path`
}

function recordOf(packaged: SourceChart): ChartSourceRecord {
  const dependencies = packaged.dependencies.map((d) => ({
    name: d.name,
    version: d.version,
    repository: d.repository,
    ...(d.alias ? { alias: d.alias } : {}),
    path: d.path,
    ...(d.sha256 ? { sha256: d.sha256 } : {}),
  }))
  const origin = packaged.origin
  const where: ChartSourceRecord =
    'git' in origin
      ? {
          git: {
            url: origin.git.url,
            ref: origin.git.ref,
            ...(origin.git.refName ? { refName: origin.git.refName } : {}),
            commit: origin.git.commit,
            path: origin.git.path,
          },
        }
      : { local: { path: origin.local.dir } }
  return dependencies.length ? { ...where, dependencies } : where
}
