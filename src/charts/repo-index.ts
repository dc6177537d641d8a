import type { Readable } from 'node:stream'
import { CORE_SCHEMA, load, mergeTag } from 'js-yaml'
import { AirgapError } from '../errors.js'
import type { HttpClient, HttpResponse } from '../net/http.js'
import { withWholeBodyRetries } from '../net/retry.js'
import { closestVersions, compareVersions, sameVersion } from './version.js'

/**
 * Helm chart repositories (https://…): the repository index (index.yaml), choosing a chart version in it, and
 * resolving the chart's download URL the way Helm does.
 */

/** The most we read of a repository index (large public repositories are tens of MiB). */
export const MAX_INDEX_BYTES = 64 << 20

/** Credentials for a chart repository: HTTP basic auth, as `helm repo add --username/--password`, or a bearer token. */
export type ChartRepoAuth = { username: string; password: string } | { token: string }

/** One chart version of a repository index, as astrago-airgap uses it. */
export interface ChartVersionEntry {
  name: string
  version: string
  appVersion?: string
  /** Download URLs as the index gives them (absolute, or relative to the repository URL). */
  urls: string[]
  /** sha256 of the .tgz, lowercase hex; absent when the index has none (or an unusable one). */
  digest?: string
  created?: string
  description?: string
  /** The chart's apiVersion (v1 or v2). */
  apiVersion?: string
  deprecated?: boolean
}

export interface RepoIndex {
  apiVersion: string
  /** Chart name → its versions, in index order. */
  entries: Map<string, ChartVersionEntry[]>
  generated?: string
  /** The repository URL the index came from, for messages. */
  repoUrl?: string
}

export interface FetchRepoIndexOptions {
  signal?: AbortSignal
  auth?: ChartRepoAuth
  /** Cap on the index size (default MAX_INDEX_BYTES). */
  maxBytes?: number
}

/** The URL of a repository's index: `<repo>/index.yaml`, keeping the repository URL's query (as Helm does). */
export function repoIndexUrl(repoUrl: string): string {
  const url = parseRepoUrl(repoUrl)
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/index.yaml`
  url.hash = ''
  return url.toString()
}

/** An Authorization header for the credentials. */
export function authHeaders(auth: ChartRepoAuth | undefined): Record<string, string> {
  if (!auth) return {}
  if ('token' in auth) return { authorization: `Bearer ${auth.token}` }
  return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }
}

/** Downloads and parses `<repo>/index.yaml`. */
export async function fetchRepoIndex(
  http: HttpClient,
  repoUrl: string,
  options: FetchRepoIndexOptions = {},
): Promise<RepoIndex> {
  const url = repoIndexUrl(repoUrl)
  const what = `the index of chart repository ${repoUrl}`
  const bytes = await withWholeBodyRetries(
    what,
    async () => {
      const res = await http.fetch(url, { headers: authHeaders(options.auth), signal: options.signal })
      await expectOk(res, url, what, Boolean(options.auth))
      return await readBodyCapped(
        res.body,
        options.maxBytes ?? MAX_INDEX_BYTES,
        url,
        res.header('content-length'),
      )
    },
    { policy: http.retryPolicy, signal: options.signal },
  )
  return parseRepoIndex(bytes.toString('utf8'), repoUrl)
}

/** Parses the text of an index.yaml; anything that is not a Helm repository index is E_REMOTE. */
export function parseRepoIndex(text: string, repoUrl?: string): RepoIndex {
  const where = repoUrl ? repoIndexUrl(repoUrl) : 'index.yaml'
  const notAnIndex = (why: string, cause?: unknown) =>
    new AirgapError('E_REMOTE', `${where} is not a Helm repository index: ${why}`, {
      cause,
      data: { url: where },
      hints: [
        'The chart repository URL must be the folder that holds index.yaml (as for `helm repo add`).',
        'For a chart in an OCI registry, write the repository as oci://host/path.',
      ],
    })
  let doc: unknown
  try {
    doc = load(text, { schema: CORE_SCHEMA.withTags(mergeTag), json: true, filename: where })
  } catch (error) {
    const looksHtml = /^\s*<(!doctype|html)/i.test(text)
    throw notAnIndex(looksHtml ? 'the server returned an HTML page' : (error as Error).message, error)
  }
  if (!isObject(doc)) throw notAnIndex('it is not a YAML mapping')
  if (typeof doc.apiVersion !== 'string' || !doc.apiVersion) throw notAnIndex('it has no apiVersion')
  const rawEntries = doc.entries ?? {}
  if (!isObject(rawEntries)) throw notAnIndex('its "entries" is not a mapping')

  const entries = new Map<string, ChartVersionEntry[]>()
  for (const [name, list] of Object.entries(rawEntries)) {
    if (!Array.isArray(list)) continue
    const versions: ChartVersionEntry[] = []
    for (const raw of list) {
      const entry = toEntry(name, raw)
      // Helm skips invalid entries too (with a warning) rather than refusing the whole repository.
      if (entry) versions.push(entry)
    }
    if (versions.length) entries.set(name, versions)
  }
  const index: RepoIndex = { apiVersion: doc.apiVersion, entries }
  if (doc.generated !== undefined && doc.generated !== null) index.generated = String(doc.generated)
  if (repoUrl) index.repoUrl = repoUrl
  return index
}

function toEntry(key: string, raw: unknown): ChartVersionEntry | undefined {
  if (!isObject(raw)) return undefined
  const version = scalar(raw.version)
  if (!version) return undefined
  const urls = Array.isArray(raw.urls)
    ? raw.urls.filter((u): u is string => typeof u === 'string' && u !== '')
    : []
  const entry: ChartVersionEntry = { name: scalar(raw.name) ?? key, version, urls }
  const appVersion = scalar(raw.appVersion)
  if (appVersion) entry.appVersion = appVersion
  const digest = normalizeDigest(raw.digest)
  if (digest) entry.digest = digest
  const created = scalar(raw.created)
  if (created) entry.created = created
  const description = scalar(raw.description)
  if (description) entry.description = description
  const apiVersion = scalar(raw.apiVersion)
  if (apiVersion) entry.apiVersion = apiVersion
  if (raw.deprecated === true) entry.deprecated = true
  return entry
}

/** A sha256 hex digest from an index ("abc…" or "sha256:abc…"), lowercase; undefined when absent or malformed. */
export function normalizeDigest(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const hex = value
    .trim()
    .replace(/^sha256:/i, '')
    .toLowerCase()
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined
}

/**
 * Picks `name` at exactly `version` (a leading "v" on either side is ignored, as Helm's semver match does). A missing
 * chart or version is E_REMOTE naming the repository and the closest versions it has (newest first, at most 10).
 */
export function selectChartVersion(index: RepoIndex, name: string, version: string): ChartVersionEntry {
  const repo = index.repoUrl ?? 'the chart repository'
  const versions = index.entries.get(name)
  if (!versions?.length) {
    const similar = similarNames(name, [...index.entries.keys()])
    throw new AirgapError(
      'E_REMOTE',
      `Chart "${name}" is not in ${repo}${similar.length ? ` (similar: ${similar.join(', ')})` : ''}.`,
      {
        data: { repo: index.repoUrl, chart: name, version, similar },
        hints: [
          'Check the chart name and the repository URL (`helm search repo` lists what a repository has).',
        ],
      },
    )
  }
  const exact =
    versions.find((v) => v.version === version) ?? versions.find((v) => sameVersion(v.version, version))
  if (exact) return exact
  const available = closestVersions(
    version,
    versions.map((v) => v.version),
  )
  throw new AirgapError(
    'E_REMOTE',
    `Chart "${name}" has no version ${version} in ${repo}; closest available: ${available.join(', ')}.`,
    {
      data: { repo: index.repoUrl, chart: name, version, available },
      hints: ['Pin one of the available versions in the bundle definition.'],
    },
  )
}

/** All versions of a chart in an index, newest first. */
export function chartVersions(index: RepoIndex, name: string): string[] {
  return (index.entries.get(name) ?? []).map((v) => v.version).sort((a, b) => compareVersions(b, a))
}

/**
 * Resolves a chart URL from an index against the repository URL, as Helm's ResolveReferenceURL: absolute URLs are
 * kept; relative ones resolve against the repository URL taken as a folder, keeping the repository URL's query.
 */
export function resolveChartUrl(repoUrl: string, entryUrl: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(entryUrl)) return entryUrl
  const base = parseRepoUrl(repoUrl)
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/`
  base.hash = ''
  const resolved = new URL(entryUrl, base)
  resolved.search = base.search
  return resolved.toString()
}

function parseRepoUrl(repoUrl: string): URL {
  let url: URL
  try {
    url = new URL(repoUrl)
  } catch (error) {
    throw new AirgapError('E_INPUT', `Chart repository "${repoUrl}" is not a URL.`, { cause: error })
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AirgapError(
      'E_INPUT',
      `Chart repository "${repoUrl}" is not an http(s) Helm repository (OCI repositories are written oci://…).`,
    )
  }
  return url
}

/** Turns a non-200 response into the right error (its body is discarded). */
export async function expectOk(
  res: HttpResponse,
  url: string,
  what: string,
  withAuth: boolean,
): Promise<void> {
  if (res.status === 200) return
  await res.body.dump().catch(() => {})
  if (res.status === 401 || res.status === 403) {
    throw new AirgapError(
      'E_AUTH',
      `${url}: HTTP ${res.status} (${withAuth ? 'credentials refused' : 'credentials required'}) fetching ${what}.`,
      { data: { url, status: res.status }, hints: ['Give the chart repository credentials.'] },
    )
  }
  throw new AirgapError('E_REMOTE', `${url}: HTTP ${res.status} fetching ${what}.`, {
    data: { url, status: res.status },
    hints:
      res.status === 404
        ? ['Check the URL: a Helm repository URL is the folder that holds index.yaml.']
        : ['The server refused or failed; check it, or try again later.'],
  })
}

/** Reads a whole response body, failing with E_REMOTE once it exceeds `maxBytes` (it stops reading then). */
export async function readBodyCapped(
  body: Readable,
  maxBytes: number,
  url: string,
  contentLength?: string,
): Promise<Buffer> {
  const tooBig = () =>
    new AirgapError('E_REMOTE', `${url} is larger than the ${Math.round(maxBytes / 1048576)} MiB accepted.`, {
      data: { url, maxBytes },
    })
  if (contentLength && Number(contentLength) > maxBytes) {
    body.destroy()
    throw tooBig()
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array)
    size += buf.length
    if (size > maxBytes) {
      body.destroy()
      throw tooBig()
    }
    chunks.push(buf)
  }
  return Buffer.concat(chunks, size)
}

function similarNames(name: string, names: string[], limit = 10): string[] {
  const lower = name.toLowerCase()
  const scored = names
    .map((n) => {
      const l = n.toLowerCase()
      const d = l.includes(lower) || lower.includes(l) ? 0 : editDistance(lower, l)
      return { n, d }
    })
    .filter((s) => s.d <= Math.max(2, Math.floor(name.length / 3)))
  scored.sort((a, b) => a.d - b.d || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))
  return scored.slice(0, limit).map((s) => s.n)
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Number.MAX_SAFE_INTEGER
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}

function scalar(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
