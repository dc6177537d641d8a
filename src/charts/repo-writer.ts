import { dump } from 'js-yaml'
import { AirgapError } from '../errors.js'
import { compareVersions, isValidVersion } from './version.js'

/**
 * Writes the index.yaml of a Helm chart repository made of the bundle's charts, so that the air-gapped site can serve
 * the charts folder as a plain Helm repository (`helm repo add`, `helm install --repo`). The output is deterministic:
 * the same charts give byte-identical text, whatever their order.
 */

export interface RepoChart {
  name: string
  version: string
  appVersion?: string
  description?: string
  /** The chart's apiVersion, which Helm requires in index entries (default v2). */
  apiVersion?: string
  /** application or library. */
  type?: string
  /** sha256 of the .tgz, hex. */
  digest: string
  /** The .tgz's path relative to the index, e.g. "gpu-operator-v24.9.0.tgz". */
  fileName: string
  /** Kept as given (RFC 3339); omitted when absent. */
  created?: string
}

export interface BuildRepoIndexOptions {
  /** The index's `generated` time (RFC 3339). Default: the Unix epoch, so the output depends only on the charts. */
  generated?: string
}

export const EPOCH = '1970-01-01T00:00:00Z'

export function buildRepoIndex(charts: RepoChart[], options: BuildRepoIndexOptions = {}): string {
  const byName = new Map<string, RepoChart[]>()
  for (const chart of charts) {
    validate(chart)
    const list = byName.get(chart.name) ?? []
    const same = list.find((c) => c.version === chart.version)
    if (same) {
      if (JSON.stringify(canonical(same)) === JSON.stringify(canonical(chart))) continue
      throw new AirgapError('E_INPUT', `Chart ${chart.name} ${chart.version} is given twice, differently.`, {
        data: { name: chart.name, version: chart.version },
      })
    }
    list.push(chart)
    byName.set(chart.name, list)
  }

  const entries: Record<string, unknown[]> = {}
  for (const name of [...byName.keys()].sort(compare)) {
    const list = byName.get(name) ?? []
    list.sort((a, b) => compareVersions(b.version, a.version))
    entries[name] = list.map(canonical)
  }
  const index = { apiVersion: 'v1', entries, generated: options.generated ?? EPOCH }
  return dump(index, { lineWidth: -1, noRefs: true, quoteStyle: 'double' })
}

/** An index entry with Helm's field names, in alphabetical order as `helm repo index` writes them. */
function canonical(chart: RepoChart): Record<string, unknown> {
  const entry: Record<string, unknown> = { apiVersion: chart.apiVersion ?? 'v2' }
  if (chart.appVersion) entry.appVersion = chart.appVersion
  if (chart.created) entry.created = chart.created
  if (chart.description) entry.description = chart.description
  entry.digest = chart.digest.toLowerCase().replace(/^sha256:/, '')
  entry.name = chart.name
  if (chart.type) entry.type = chart.type
  entry.urls = [chart.fileName]
  entry.version = chart.version
  return entry
}

function validate(chart: RepoChart): void {
  const bad = (why: string) =>
    new AirgapError(
      'E_INPUT',
      `Cannot index chart ${chart.name || '(no name)'} ${chart.version || ''}: ${why}.`,
      {
        data: { name: chart.name, version: chart.version },
      },
    )
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(chart.name)) throw bad('the name is not a valid chart name')
  // Helm skips index entries whose version is not semver, so such a chart would silently be missing.
  if (!isValidVersion(chart.version)) throw bad('the version is not semver, which Helm requires')
  if (!/^(sha256:)?[0-9a-fA-F]{64}$/.test(chart.digest)) throw bad('the digest is not a sha256 hex digest')
  if (!chart.fileName || chart.fileName.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(chart.fileName)) {
    throw bad('the file name must be a path relative to the index')
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
