import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { AirgapError, isAirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import type { HttpClient } from '../net/http.js'
import { type ChartDependency, downloadChart, type OciChartPuller, readChartMetadata } from './download.js'
import type { PackagedChart } from './package-chart.js'
import { type ChartRepoAuth, chartVersions, fetchRepoIndex, isObject, type RepoIndex } from './repo-index.js'
import { closestVersions } from './version.js'
import { newestSatisfying, parseVersionRange, type VersionRange } from './version-range.js'

/**
 * Vendors a chart's dependencies (Chart.yaml `dependencies`, or a v1 chart's requirements.yaml) into its charts/
 * folder, as `helm dependency build` would, so the packaged chart installs with no network: each one from its chart
 * repository (https:// or oci://, through the same download, mirrors and credentials as the bundle's own charts), a
 * `file://` one packaged from its folder (its own dependencies vendored in turn). A dependency already in charts/ at a
 * version the constraint accepts is kept. Versions come from Chart.lock when it pins them, else the newest the
 * constraint accepts (with a warning when the constraint is a range). The chart folder itself is never written to.
 */
export interface VendorDependenciesOptions {
  http: HttpClient
  /** Where downloaded archives are written (the caller's scratch folder). */
  workDir: string
  /** Credentials for a dependency's chart repository (by its URL), when it needs them. */
  repoAuth?: (repoUrl: string) => ChartRepoAuth | undefined
  /** Pulls oci:// dependencies. */
  ociPull?: OciChartPuller
  /** Repository indexes shared with the rest of the bundle. */
  indexCache?: Map<string, Promise<RepoIndex>>
  /** Packages the chart folder of a `file://` dependency (relative to the chart's folder), its dependencies vendored. */
  packageLocal: (relativePath: string) => Promise<PackagedChart>
  /** The chart, for messages. */
  label: string
  sink?: EventSink
  signal?: AbortSignal
}

export interface VendoredDependency {
  name: string
  version: string
  repository: string
  alias?: string
  /** sha256 of the archive in charts/ (absent for an unpacked folder kept as is). */
  sha256?: string
  /** Where it is in the packaged chart. */
  path: string
  from: 'repository' | 'file' | 'present'
}

export interface VendoredDependencies {
  /** For packageChart: chart path → file on disk. */
  extraFiles: Map<string, string>
  /** For packageChart: charts/ entries to leave out (an older version of a dependency being replaced). */
  omit: Set<string>
  dependencies: VendoredDependency[]
}

interface Present {
  path: string
  name: string
  version: string
}

export async function vendorDependencies(
  chartDir: string,
  options: VendorDependenciesOptions,
): Promise<VendoredDependencies> {
  const result: VendoredDependencies = { extraFiles: new Map(), omit: new Set(), dependencies: [] }
  const dependencies = await readDependencies(chartDir, options.label)
  if (dependencies.length === 0) return result
  const locked = await readLock(chartDir)
  const present = await listPresent(chartDir)

  for (const dep of dependencies) {
    const repository = dep.repository ?? ''
    const constraint = locked.get(`${dep.name}\0${repository}`) ?? dep.version ?? '*'
    const range = parseVersionRange(constraint)
    if (!range) {
      throw depError(
        'E_INPUT',
        dep,
        options.label,
        `its version "${constraint}" is not a version constraint helm reads.`,
        ['Write a version (1.2.3) or a range (~1.2.0, ^1.2, >=1.0 <2.0) in Chart.yaml.'],
      )
    }
    const kept = present.find((p) => p.name === dep.name && range.satisfiedBy(p.version))
    if (kept) {
      result.dependencies.push(record(dep, kept.version, kept.path, 'present'))
      continue
    }
    for (const stale of present.filter((p) => p.name === dep.name)) result.omit.add(stale.path)

    if (repository.startsWith('file://')) {
      const packaged = await options
        .packageLocal(repository.slice('file://'.length))
        .catch((error: unknown) => {
          throw wrap(error, dep, options.label)
        })
      if (packaged.metadata.name !== dep.name || !range.satisfiedBy(packaged.metadata.version)) {
        throw depError(
          'E_INPUT',
          dep,
          options.label,
          `${repository} holds ${packaged.metadata.name} ${packaged.metadata.version}, not ${dep.name} ${constraint}.`,
          ['Make the dependency entry name the chart and a version that folder holds.'],
        )
      }
      const path = `charts/${packaged.fileName}`
      const file = join(options.workDir, `${dep.name}-${packaged.sha256.slice(0, 12)}.tgz`)
      await writeFile(file, packaged.bytes)
      result.extraFiles.set(path, file)
      result.dependencies.push({
        ...record(dep, packaged.metadata.version, path, 'file'),
        sha256: packaged.sha256,
      })
      continue
    }
    if (!/^(https?|oci):\/\//.test(repository)) {
      throw depError(
        'E_INPUT',
        dep,
        options.label,
        repository
          ? `its repository "${repository}" is a name from a local helm configuration, not a URL.`
          : "it names no repository and is not in the chart's charts/ folder.",
        ['Write the chart repository URL (https://… or oci://…) in the dependency entry of Chart.yaml.'],
      )
    }
    const version = await pickVersion(dep, repository, range, options)
    const downloaded = await downloadChart(
      options.http,
      { name: dep.name, version, repo: repository },
      {
        signal: options.signal,
        sink: options.sink,
        ...(options.repoAuth?.(repository) ? { auth: options.repoAuth(repository) } : {}),
        ...(options.ociPull ? { ociPull: options.ociPull } : {}),
        ...(options.indexCache ? { indexCache: options.indexCache } : {}),
      },
    ).catch((error: unknown) => {
      throw wrap(error, dep, options.label)
    })
    const fileName = `${dep.name}-${downloaded.metadata.version}.tgz`
    const file = join(options.workDir, `${dep.name}-${downloaded.sha256.slice(0, 12)}.tgz`)
    await writeFile(file, downloaded.bytes)
    result.extraFiles.set(`charts/${fileName}`, file)
    result.dependencies.push({
      ...record(dep, downloaded.metadata.version, `charts/${fileName}`, 'repository'),
      sha256: downloaded.sha256,
    })
  }
  return result
}

async function pickVersion(
  dep: ChartDependency,
  repository: string,
  range: VersionRange,
  options: VendorDependenciesOptions,
): Promise<string> {
  if (range.exact) return range.text.trim().replace(/^=\s*/, '')
  if (repository.startsWith('oci://')) {
    throw depError(
      'E_INPUT',
      dep,
      options.label,
      `its version "${range.text}" is a range, and ${repository} is an OCI registry.`,
      ['Pin the exact version in Chart.yaml (or in Chart.lock with `helm dependency update`).'],
    )
  }
  let index: RepoIndex
  try {
    const auth = options.repoAuth?.(repository)
    const fetchIndex = () =>
      fetchRepoIndex(options.http, repository, { signal: options.signal, ...(auth ? { auth } : {}) })
    let pending = options.indexCache?.get(repository)
    if (!pending) {
      pending = fetchIndex()
      options.indexCache?.set(repository, pending)
      pending.catch(() => options.indexCache?.delete(repository))
    }
    index = await pending
  } catch (error) {
    throw wrap(error, dep, options.label)
  }
  const available = chartVersions(index, dep.name)
  const version = newestSatisfying(range, available)
  if (!version) {
    throw depError(
      'E_REMOTE',
      dep,
      options.label,
      `${repository} has no version of ${dep.name} that satisfies "${range.text}"` +
        (available.length
          ? `; closest: ${closestVersions(range.text.replace(/^[^\d]*/, ''), available).join(', ')}.`
          : '.'),
      ['Change the version constraint in Chart.yaml to one the repository has.'],
    )
  }
  options.sink?.emit({
    type: 'log',
    level: 'warn',
    code: 'CHART_DEPENDENCY_RANGE',
    message: `${options.label}: dependency ${dep.name} "${range.text}" is ${version} today; a rebuild may take a newer one. Pin it (or commit a Chart.lock) for a reproducible bundle.`,
    data: { chart: options.label, dependency: dep.name, range: range.text, version },
  })
  return version
}

function record(
  dep: ChartDependency,
  version: string,
  path: string,
  from: VendoredDependency['from'],
): VendoredDependency {
  return {
    name: dep.name,
    version,
    repository: dep.repository ?? '',
    ...(dep.alias ? { alias: dep.alias } : {}),
    path,
    from,
  }
}

function depError(
  code: 'E_INPUT' | 'E_REMOTE',
  dep: ChartDependency,
  label: string,
  why: string,
  hints: string[],
): AirgapError {
  return new AirgapError(code, `${label}: dependency ${dep.name}: ${why}`, {
    data: { field: 'dependencies', dependency: dep.name, repository: dep.repository, version: dep.version },
    hints,
  })
}

/** Puts the dependency and the chart in front of an error from fetching it, keeping its code. */
function wrap(error: unknown, dep: ChartDependency, label: string): unknown {
  if (!isAirgapError(error)) return error
  return new AirgapError(
    error.code,
    `${label}: dependency ${dep.name} ${dep.version ?? ''} from ${dep.repository ?? '?'}: ${error.message}`,
    {
      cause: error,
      data: { ...error.data, field: 'dependencies', dependency: dep.name, repository: dep.repository },
      hints: [
        ...error.hints,
        'Dependencies are vendored into the bundle so the chart installs offline: each must be fetchable now.',
      ],
    },
  )
}

/** Chart.yaml `dependencies` (apiVersion v2), or requirements.yaml's (v1). */
async function readDependencies(chartDir: string, label: string): Promise<ChartDependency[]> {
  const chart = await readYaml(join(chartDir, 'Chart.yaml'), `${label}/Chart.yaml`)
  let list: unknown = chart?.dependencies
  if (!Array.isArray(list))
    list = (await readYaml(join(chartDir, 'requirements.yaml'), `${label}/requirements.yaml`))?.dependencies
  if (!Array.isArray(list)) return []
  return list.filter(isObject).flatMap((d) => {
    const name = typeof d.name === 'string' ? d.name : undefined
    if (!name) return []
    const dep: ChartDependency = { name }
    for (const field of ['version', 'repository', 'alias', 'condition'] as const) {
      const value = d[field]
      if (typeof value === 'string' || typeof value === 'number') dep[field] = String(value)
    }
    return [dep]
  })
}

/** Chart.lock (or requirements.lock) pins: `name\0repository` → version. */
async function readLock(chartDir: string): Promise<Map<string, string>> {
  const pins = new Map<string, string>()
  for (const file of ['Chart.lock', 'requirements.lock']) {
    const lock = await readYaml(join(chartDir, file), file)
    if (!lock || !Array.isArray(lock.dependencies)) continue
    for (const d of lock.dependencies.filter(isObject)) {
      if (typeof d.name === 'string' && (typeof d.version === 'string' || typeof d.version === 'number'))
        pins.set(`${d.name}\0${typeof d.repository === 'string' ? d.repository : ''}`, String(d.version))
    }
    break
  }
  return pins
}

/** What charts/ already holds: archives and unpacked chart folders, by their Chart.yaml. */
async function listPresent(chartDir: string): Promise<Present[]> {
  const dir = join(chartDir, 'charts')
  const names = await readdir(dir).catch(() => [] as string[])
  const present: Present[] = []
  for (const name of names.sort()) {
    const path = join(dir, name)
    const info = await stat(path).catch(() => undefined)
    try {
      if (info?.isFile() && name.endsWith('.tgz')) {
        const metadata = await readChartMetadata(await readFile(path))
        present.push({ path: `charts/${name}`, name: metadata.name, version: metadata.version })
      } else if (info?.isDirectory()) {
        const chart = await readYaml(join(path, 'Chart.yaml'), `charts/${name}/Chart.yaml`)
        if (chart && typeof chart.name === 'string' && chart.version !== undefined)
          present.push({ path: `charts/${name}`, name: chart.name, version: String(chart.version) })
      }
    } catch {
      // Not a chart: helm would refuse it at install; it is packaged as it is and fails there, not here.
    }
  }
  return present
}

async function readYaml(path: string, label: string): Promise<Record<string, unknown> | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return undefined
  }
  try {
    const doc = load(text, { json: true, filename: label })
    return isObject(doc) ? doc : undefined
  } catch (error) {
    throw new AirgapError('E_INPUT', `${label} is not valid YAML: ${(error as Error).message}`, {
      cause: error,
    })
  }
}
