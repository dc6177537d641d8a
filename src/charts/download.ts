import { createHash } from 'node:crypto'
import { load } from 'js-yaml'
import { Parser, type ReadEntry } from 'tar'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import type { HttpClient } from '../net/http.js'
import { withWholeBodyRetries } from '../net/retry.js'
import type { RepoChartSpec } from '../spec/types.js'
import {
  authHeaders,
  type ChartRepoAuth,
  type ChartVersionEntry,
  expectOk,
  fetchRepoIndex,
  isObject,
  type RepoIndex,
  readBodyCapped,
  resolveChartUrl,
  selectChartVersion,
} from './repo-index.js'
import { sameVersion } from './version.js'

/** Charts are small; a .tgz larger than this is refused. */
export const MAX_CHART_BYTES = 64 << 20

/** Pulls a chart from an OCI registry: `ref` is `host/path/name:tag`; resolves to the chart's .tgz bytes. */
export type OciChartPuller = (ref: string, signal?: AbortSignal) => Promise<Buffer>

export interface DownloadChartOptions {
  signal?: AbortSignal
  /** Credentials for the chart repository; sent to the chart URL only when it is on the repository's origin. */
  auth?: ChartRepoAuth
  /** Pulls oci:// charts (provided by the OCI module); without it an oci:// chart is E_INTERNAL. */
  ociPull?: OciChartPuller
  /**
   * Repository indexes already fetched, by repository URL, shared between the charts of one bundle so that a
   * repository's (possibly large) index is fetched once. Filled in as indexes are fetched.
   */
  indexCache?: Map<string, Promise<RepoIndex>>
  /** Receives a warning when the index gives no digest to verify the chart against. */
  sink?: EventSink
}

export interface DownloadedChart {
  /** The chart archive (.tgz). */
  bytes: Buffer
  /** sha256 of `bytes`, lowercase hex. */
  sha256: string
  /** Where it came from: the resolved https URL, or oci://host/path/name:tag. */
  url: string
  /** The repository index entry (for oci://, one made from the chart's Chart.yaml, its digest the computed one). */
  entry: ChartVersionEntry
  /** The chart's own Chart.yaml, checked against the requested name and version. */
  metadata: ChartMetadata
}

export interface ChartDependency {
  name: string
  version?: string
  repository?: string
  alias?: string
  condition?: string
}

export interface ChartMetadata {
  apiVersion?: string
  name: string
  version: string
  appVersion?: string
  description?: string
  type?: string
  kubeVersion?: string
  /** From Chart.yaml (apiVersion v2) or requirements.yaml (v1). */
  dependencies?: ChartDependency[]
}

/**
 * Downloads one chart of a bundle definition. For an https:// (or http://) repository: its index, the chart's entry,
 * the .tgz, verified against the index's sha256 when it has one. For oci://, the `ociPull` hook. Either way the
 * archive's Chart.yaml must be the requested chart and version (E_INTEGRITY otherwise).
 */
export async function downloadChart(
  http: HttpClient,
  spec: Pick<RepoChartSpec, 'name' | 'version' | 'repo'>,
  options: DownloadChartOptions = {},
): Promise<DownloadedChart> {
  if (spec.repo.startsWith('oci://')) return await downloadOciChart(spec, options)

  const index = await cachedIndex(http, spec.repo, options)
  const entry = selectChartVersion(index, spec.name, spec.version)
  const first = entry.urls[0]
  if (!first) {
    throw new AirgapError(
      'E_REMOTE',
      `${spec.repo}: the index lists no download URL for ${spec.name} ${entry.version}.`,
      {
        data: { repo: spec.repo, chart: spec.name, version: entry.version },
      },
    )
  }
  const url = resolveChartUrl(spec.repo, first)
  const sameOrigin = new URL(url).origin === new URL(spec.repo).origin
  const headers = sameOrigin ? authHeaders(options.auth) : {}
  const what = `chart ${spec.name} ${entry.version}`
  const bytes = await withWholeBodyRetries(
    what,
    async () => {
      const res = await http.fetch(url, { headers, signal: options.signal })
      await expectOk(res, url, what, Boolean(headers.authorization))
      return await readBodyCapped(res.body, MAX_CHART_BYTES, url, res.header('content-length'))
    },
    { policy: http.retryPolicy, signal: options.signal },
  )
  const sha256 = createHash('sha256').update(bytes).digest('hex')

  if (entry.digest) {
    if (entry.digest !== sha256) {
      throw new AirgapError(
        'E_INTEGRITY',
        `${url}: chart ${spec.name} ${entry.version} does not match the repository index (expected sha256 ${entry.digest}, got ${sha256}).`,
        {
          data: { url, expected: entry.digest, actual: sha256 },
          hints: [
            'The repository or a proxy in between served other bytes than its index describes; try again.',
          ],
        },
      )
    }
  } else {
    options.sink?.emit({
      type: 'log',
      level: 'warn',
      code: 'CHART_NO_DIGEST',
      message: `${spec.repo}: the index has no sha256 for ${spec.name} ${entry.version}; it is not verified against it.`,
      data: { repo: spec.repo, chart: spec.name, version: entry.version },
    })
  }

  const metadata = await readChartMetadata(bytes)
  checkMetadata(metadata, spec.name, entry.version, url)
  return { bytes, sha256, url, entry, metadata }
}

async function cachedIndex(
  http: HttpClient,
  repo: string,
  options: DownloadChartOptions,
): Promise<RepoIndex> {
  const cache = options.indexCache
  if (!cache) return await fetchRepoIndex(http, repo, { signal: options.signal, auth: options.auth })
  let pending = cache.get(repo)
  if (!pending) {
    pending = fetchRepoIndex(http, repo, { signal: options.signal, auth: options.auth })
    cache.set(repo, pending)
    // A failed fetch is not cached: the next chart of that repository tries again.
    pending.catch(() => {
      if (cache.get(repo) === pending) cache.delete(repo)
    })
  }
  return await pending
}

/** The OCI reference of a chart: `<repo without oci://>/<name>:<version>` ("+" becomes "_", as Helm tags it). */
export function ociChartRef(repo: string, name: string, version: string): string {
  const base = repo.replace(/^oci:\/\//, '').replace(/\/+$/, '')
  return `${base}/${name}:${version.replace(/\+/g, '_')}`
}

async function downloadOciChart(
  spec: Pick<RepoChartSpec, 'name' | 'version' | 'repo'>,
  options: DownloadChartOptions,
): Promise<DownloadedChart> {
  const ref = ociChartRef(spec.repo, spec.name, spec.version)
  if (!options.ociPull) {
    throw new AirgapError(
      'E_INTERNAL',
      `Chart ${spec.name} is in an OCI registry (${spec.repo}), but no OCI puller was provided.`,
      {
        data: { repo: spec.repo, chart: spec.name, ref },
      },
    )
  }
  const bytes = await options.ociPull(ref, options.signal)
  const url = `oci://${ref}`
  if (bytes.length > MAX_CHART_BYTES) {
    throw new AirgapError(
      'E_REMOTE',
      `${url} is larger than the ${MAX_CHART_BYTES >> 20} MiB accepted for a chart.`,
    )
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const metadata = await readChartMetadata(bytes)
  checkMetadata(metadata, spec.name, spec.version, url)
  const entry: ChartVersionEntry = {
    name: metadata.name,
    version: metadata.version,
    urls: [url],
    digest: sha256,
  }
  if (metadata.appVersion) entry.appVersion = metadata.appVersion
  if (metadata.description) entry.description = metadata.description
  if (metadata.apiVersion) entry.apiVersion = metadata.apiVersion
  return { bytes, sha256, url, entry, metadata }
}

function checkMetadata(metadata: ChartMetadata, name: string, version: string, url: string): void {
  if (metadata.name !== name || !sameVersion(metadata.version, version)) {
    throw new AirgapError(
      'E_INTEGRITY',
      `${url} holds chart ${metadata.name} ${metadata.version}, not the requested ${name} ${version}.`,
      {
        data: {
          url,
          expected: { name, version },
          actual: { name: metadata.name, version: metadata.version },
        },
      },
    )
  }
}

/** Chart.yaml or requirements.yaml larger than this is not read. */
const MAX_METADATA_BYTES = 1 << 20

/**
 * Reads Chart.yaml (and a v1 chart's requirements.yaml) out of a chart archive, streaming through the gzip and tar
 * in memory (nothing is written to disk). A file that is not a chart archive is E_INTEGRITY.
 */
export async function readChartMetadata(tgz: Buffer): Promise<ChartMetadata> {
  const files = new Map<string, Buffer>()
  let tooLarge: string | undefined
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        const parts = entry.path.replace(/^\.\//, '').split('/')
        const file = parts[1]
        const wanted =
          parts.length === 2 &&
          (file === 'Chart.yaml' || file === 'requirements.yaml') &&
          entry.type === 'File'
        if (!wanted || files.has(file)) {
          entry.resume()
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        entry.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size <= MAX_METADATA_BYTES) chunks.push(chunk)
          else tooLarge = file
        })
        entry.on('end', () => {
          if (size <= MAX_METADATA_BYTES) files.set(file, Buffer.concat(chunks))
        })
      },
    })
    parser.on('error', (error: Error) =>
      reject(
        new AirgapError('E_INTEGRITY', `Not a readable chart archive (.tgz): ${error.message}`, {
          cause: error,
        }),
      ),
    )
    parser.on('end', () => resolve())
    parser.end(tgz)
  })

  const chartYaml = files.get('Chart.yaml')
  if (!chartYaml) {
    throw new AirgapError(
      'E_INTEGRITY',
      tooLarge === 'Chart.yaml'
        ? 'The chart archive has a Chart.yaml larger than 1 MiB.'
        : 'The chart archive has no <chart>/Chart.yaml: it is not a Helm chart.',
    )
  }
  const chart = parseYamlFile(chartYaml, 'Chart.yaml')
  const name = str(chart.name)
  const version = str(chart.version)
  if (!name || !version) {
    throw new AirgapError(
      'E_INTEGRITY',
      "The chart archive's Chart.yaml has no name or version: it is not a valid chart.",
    )
  }
  const metadata: ChartMetadata = { name, version }
  const fields = ['apiVersion', 'appVersion', 'description', 'type', 'kubeVersion'] as const
  for (const field of fields) {
    const value = str(chart[field])
    if (value) metadata[field] = value
  }
  let deps: unknown = chart.dependencies
  const requirements = files.get('requirements.yaml')
  if (!Array.isArray(deps) && requirements)
    deps = parseYamlFile(requirements, 'requirements.yaml').dependencies
  if (Array.isArray(deps)) {
    metadata.dependencies = deps.filter(isObject).flatMap((d) => {
      const depName = str(d.name)
      if (!depName) return []
      const dep: ChartDependency = { name: depName }
      for (const field of ['version', 'repository', 'alias', 'condition'] as const) {
        const value = str(d[field])
        if (value) dep[field] = value
      }
      return [dep]
    })
  }
  return metadata
}

function parseYamlFile(bytes: Buffer, name: string): Record<string, unknown> {
  let doc: unknown
  try {
    doc = load(bytes.toString('utf8'), { json: true, filename: name })
  } catch (error) {
    throw new AirgapError(
      'E_INTEGRITY',
      `The chart archive's ${name} is not valid YAML: ${(error as Error).message}`,
      {
        cause: error,
      },
    )
  }
  if (!isObject(doc))
    throw new AirgapError('E_INTEGRITY', `The chart archive's ${name} is not a YAML mapping.`)
  return doc
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number') return String(value)
  return undefined
}
