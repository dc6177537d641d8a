import { execFileSync } from 'node:child_process'
import type { BundleMetadata } from '../src/bundle/metadata.js'
import { formatSize } from './support.js'

/**
 * What the members of a bundle file are, for the delta benchmark: the tar's entries with their sizes (`tar -tv`, as a
 * site would list it) sorted into kinds. A blob is named by the manifest that references it: the image manifests and
 * chart artifacts of the bundle's own bundle.json, read from the file itself (only those the file holds).
 */
export interface Entry {
  path: string
  size: number
}

export function tarEntries(file: string): Entry[] {
  const listing = execFileSync('tar', ['-tvf', file, '--numeric-owner'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
  return listing
    .trim()
    .split('\n')
    .map((line) => {
      const m = /^\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line)
      if (!m) throw new Error(`unexpected tar -tv line: ${line}`)
      return { path: m[2]!, size: Number(m[1]) }
    })
}

const member = (file: string, path: string) =>
  execFileSync('tar', ['-xOf', file, path], { maxBuffer: 256 << 20 }).toString('utf8')
const blobPath = (digest: string) => `oci/blobs/sha256/${digest.replace(/^sha256:/, '')}`

/** The kind of each blob of `file` that an image manifest or a chart artifact it holds references. */
function blobKinds(file: string, entries: Entry[]): Map<string, string> {
  const held = new Set(entries.map((e) => e.path))
  const metadata = JSON.parse(member(file, 'bundle.json')) as BundleMetadata
  const kinds = new Map<string, string>()
  const manifests = [
    ...metadata.images.flatMap((i) =>
      [i.digest, ...i.manifests.map((m) => m.digest)].map((d) => [d, 'image']),
    ),
    ...metadata.charts.map((c) => [c.oci.digest, 'chart artifact']),
  ]
  for (const [digest, owner] of manifests) {
    const path = blobPath(digest!)
    if (!held.has(path)) continue
    kinds.set(path, `${owner} manifests and configs`)
    const manifest = JSON.parse(member(file, path)) as {
      config?: { digest: string }
      layers?: { digest: string }[]
    }
    if (manifest.config) kinds.set(blobPath(manifest.config.digest), `${owner} manifests and configs`)
    for (const layer of manifest.layers ?? [])
      kinds.set(blobPath(layer.digest), owner === 'image' ? 'image layers' : 'chart artifact layers')
  }
  return kinds
}

export interface KindSummary {
  kind: string
  members: number
  bytes: number
  paths: string[]
}

/** The entries of a bundle file grouped by kind, in the order the kinds first appear in the tar. */
export function summarizeMembers(file: string, entries: Entry[]): KindSummary[] {
  const blobs = blobKinds(file, entries)
  const kindOf = (path: string): string => {
    if (path === 'bundle.json' || path === 'bundle.json.sig') return 'bundle.json + signature'
    if (path.startsWith('oci/blobs/')) return blobs.get(path) ?? 'other blobs'
    if (path.startsWith('oci/') || path.endsWith('/index.yaml')) return 'index files'
    if (path.startsWith('charts/')) return 'charts'
    if (path.startsWith('manifests/')) return 'stage files'
    return 'other'
  }
  const groups = new Map<string, KindSummary>()
  for (const e of entries) {
    const kind = kindOf(e.path)
    const g = groups.get(kind) ?? { kind, members: 0, bytes: 0, paths: [] }
    g.members++
    g.bytes += e.size
    g.paths.push(e.path.startsWith('oci/blobs/') ? `${e.path.slice(17, 24)}… ${size(e.size)}` : e.path)
    groups.set(kind, g)
  }
  return [...groups.values()]
}

/** formatSize, with bytes below 1 KiB. */
export const size = (bytes: number) => (bytes < 1024 ? `${bytes} B` : formatSize(bytes))
