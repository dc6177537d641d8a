import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import type { HttpClient } from '../net/http.js'
import type { OciChartPuller } from './download.js'
import {
  chartFoldersAt,
  fetchGitCommit,
  type GitChartRef,
  type GitSourceOptions,
  normalizeRepoPath,
  resolveGitRef,
  writeGitTree,
} from './git-chart-source.js'
import { redact } from './git-command.js'
import { type PackagedChart, packageChart, readChartYaml } from './package-chart.js'
import type { ChartRepoAuth, RepoIndex } from './repo-index.js'
import { type VendoredDependency, vendorDependencies } from './vendor-dependencies.js'

/**
 * Charts that no chart repository publishes: from a git repository at a commit, or from a local folder. Two steps,
 * so a bundle can record what it resolved before it packages: `resolveChartSource` pins the source (a git ref becomes
 * a commit) and puts the chart's folder on disk; `packageChartSource` vendors its dependencies and packages it
 * reproducibly. `buildSourceChart` does both in a scratch folder it removes afterwards.
 */
export type ChartSource = { git: GitChartRef } | { local: { dir: string } }

/** Where a packaged chart came from, for bundle.json. */
export type ChartOrigin =
  | { git: { url: string; ref: string; path: string; commit: string; refName?: string } }
  | { local: { dir: string } }

export interface ChartSourceOptions extends GitSourceOptions {
  /** For dependencies in chart repositories (mirrors and CAs as configured on it). */
  http: HttpClient
  /** Scratch folder for the chart's files and downloaded dependencies (default: a new temporary folder). */
  workDir?: string
  /** Relative local folders are taken from here (the bundle definition's folder); default the current folder. */
  baseDir?: string
  repoAuth?: (repoUrl: string) => ChartRepoAuth | undefined
  ociPull?: OciChartPuller
  indexCache?: Map<string, Promise<RepoIndex>>
  sink?: EventSink
  signal?: AbortSignal
}

export interface ResolvedChartSource {
  origin: ChartOrigin
  /** The chart's folder on disk (read only: packaging never writes into it). */
  chartDir: string
  /** How the chart is named in messages. */
  label: string
  /** The folder of a `file://` dependency written in the chart at `fromDir`, put on disk if it is not yet. */
  dependencyDir(fromDir: string, relativePath: string): Promise<string>
}

export interface SourceChart extends PackagedChart {
  origin: ChartOrigin
  /** The dependencies vendored into charts/, for the record. */
  dependencies: VendoredDependency[]
}

/** Pins the source and puts the chart folder on disk (for git, under `workDir`). */
export async function resolveChartSource(
  source: ChartSource,
  options: ChartSourceOptions & { workDir: string },
): Promise<ResolvedChartSource> {
  if ('local' in source) return await resolveLocal(source.local.dir, options)
  return await resolveGit(source.git, options)
}

async function resolveLocal(dir: string, options: ChartSourceOptions): Promise<ResolvedChartSource> {
  const chartDir = resolve(options.baseDir ?? process.cwd(), dir)
  const info = await stat(chartDir).catch(() => undefined)
  if (!info?.isDirectory()) {
    throw new AirgapError('E_INPUT', `The chart folder ${chartDir} does not exist.`, {
      data: { field: 'path', dir: chartDir },
      hints: ['A local chart source is a folder holding Chart.yaml, relative to the bundle definition.'],
    })
  }
  await readChartYaml(chartDir)
  return {
    origin: { local: { dir } },
    chartDir,
    label: chartDir,
    dependencyDir: async (fromDir, rel) => resolve(fromDir, rel),
  }
}

async function resolveGit(
  source: GitChartRef,
  options: ChartSourceOptions & { workDir: string },
): Promise<ResolvedChartSource> {
  const path = normalizeRepoPath(source.path)
  const { commit, refName } = await resolveGitRef(source, options)
  const repo = await fetchGitCommit(source.url, commit, options)
  const url = redact(source.url)
  const label = `${url}@${commit.slice(0, 12)}:${path || '.'}`
  const treeRoot = join(options.workDir, 'tree')
  const written: string[] = []
  const materialize = async (repoPath: string): Promise<string> => {
    const dest = join(treeRoot, ...repoPath.split('/').filter(Boolean))
    if (written.some((w) => w === '' || repoPath === w || repoPath.startsWith(`${w}/`))) return dest
    const count = await writeGitTree(repo, commit, repoPath, dest, options)
    if (count === 0) {
      const charts = await chartFoldersAt(repo, commit)
      throw new AirgapError('E_INPUT', `${url} has no folder "${repoPath || '.'}" at commit ${commit}.`, {
        data: { field: 'path', url, commit, path: repoPath, charts },
        hints: [
          charts.length
            ? `Folders with a Chart.yaml at that commit: ${charts.join(', ')}.`
            : 'No folder of that commit holds a Chart.yaml.',
        ],
      })
    }
    written.push(repoPath)
    return dest
  }
  const chartDir = await materialize(path)
  try {
    await readChartYaml(chartDir, label)
  } catch (error) {
    const charts = await chartFoldersAt(repo, commit)
    throw new AirgapError(
      'E_INPUT',
      `${label}: the folder "${path || '.'}" holds no chart (no valid Chart.yaml).`,
      {
        cause: error,
        data: { field: 'path', url, commit, path, charts },
        hints: [
          charts.length
            ? `Folders with a Chart.yaml at that commit: ${charts.join(', ')}.`
            : 'No folder of that commit holds a Chart.yaml.',
        ],
      },
    )
  }
  options.sink?.emit({
    type: 'log',
    level: 'info',
    code: 'CHART_GIT_RESOLVED',
    message: `${url} ${source.ref} → commit ${commit}, chart folder ${path || '.'}`,
    data: { url, ref: source.ref, commit, path },
  })
  return {
    origin: { git: { url, ref: source.ref, path, commit, ...(refName ? { refName } : {}) } },
    chartDir,
    label,
    dependencyDir: async (fromDir, rel) => {
      const from = relative(treeRoot, fromDir).split(sep).join('/')
      const target = posix.normalize(posix.join(from, rel))
      if (target === '..' || target.startsWith('../') || isAbsolute(rel)) {
        throw new AirgapError(
          'E_INPUT',
          `${label}: the dependency file://${rel} is outside the repository.`,
          {
            data: { field: 'dependencies', path: rel },
            hints: ['A file:// dependency of a chart from git must be a folder of the same repository.'],
          },
        )
      }
      return await materialize(target === '.' ? '' : target)
    },
  }
}

/** Vendors the chart's dependencies and packages it reproducibly. */
export async function packageChartSource(
  resolved: ResolvedChartSource,
  options: ChartSourceOptions & { workDir: string },
): Promise<SourceChart> {
  const { packaged, dependencies } = await packageFolder(
    resolved,
    resolved.chartDir,
    resolved.label,
    options,
    [],
  )
  return { ...packaged, origin: resolved.origin, dependencies }
}

const MAX_DEPTH = 10

async function packageFolder(
  resolved: ResolvedChartSource,
  dir: string,
  label: string,
  options: ChartSourceOptions & { workDir: string },
  stack: string[],
): Promise<{ packaged: PackagedChart; dependencies: VendoredDependency[] }> {
  if (stack.includes(dir) || stack.length > MAX_DEPTH) {
    throw new AirgapError('E_INPUT', `${label}: its file:// dependencies form a cycle (or nest too deep).`, {
      data: { field: 'dependencies', folders: [...stack, dir] },
    })
  }
  const vendored = await vendorDependencies(dir, {
    http: options.http,
    workDir: options.workDir,
    label,
    ...(options.repoAuth ? { repoAuth: options.repoAuth } : {}),
    ...(options.ociPull ? { ociPull: options.ociPull } : {}),
    ...(options.indexCache ? { indexCache: options.indexCache } : {}),
    ...(options.sink ? { sink: options.sink } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    packageLocal: async (rel) => {
      const depDir = await resolved.dependencyDir(dir, rel)
      return (await packageFolder(resolved, depDir, `${label} → file://${rel}`, options, [...stack, dir]))
        .packaged
    },
  })
  const packaged = await packageChart(dir, { extraFiles: vendored.extraFiles, omit: vendored.omit, label })
  return { packaged, dependencies: vendored.dependencies }
}

/** Resolves and packages a chart source in a scratch folder (removed afterwards unless it was given). */
export async function buildSourceChart(
  source: ChartSource,
  options: ChartSourceOptions,
): Promise<SourceChart> {
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'astrago-airgap-chart-')))
  try {
    const resolved = await resolveChartSource(source, { ...options, workDir })
    return await packageChartSource(resolved, { ...options, workDir })
  } finally {
    if (!options.workDir) await rm(workDir, { recursive: true, force: true })
  }
}
