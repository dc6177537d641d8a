import type { BundleReader } from '../bundle/reader.js'
import { type Descriptor, MediaType } from '../oci/media-types.js'
import type { Repo } from '../oci/registry-client.js'
import { type PushTarget, siteChartRepository, siteRepository } from './target.js'

/**
 * The plan of a push: one entry per image and chart of the bundle, with the repository of the site registry it goes
 * to. Reading its manifests (load-documents.ts) fills in its blobs; the check (check-registry.ts) marks what the
 * registry already holds; the push sends the rest.
 */

/** A manifest or index as the bundle holds it, byte for byte. */
export interface ManifestDocument {
  digest: string
  mediaType: string
  bytes: Buffer
}

export interface PushWork {
  kind: 'image' | 'chart'
  source: string
  repo: Repo
  /** The tag, or the digest for images the bundle holds by digest only. */
  reference: string
  digest: string
  mediaType: string
  /** Children first, the tagged document last. */
  documents: ManifestDocument[]
  blobs: Descriptor[]
  /** Blobs the repository lacks (after the check). */
  missing: Descriptor[]
  present: boolean
  /** The digest the tag pointed at before, when it pointed elsewhere. */
  previous?: string
}

/** The images and charts of the bundle, with their target repositories (nothing read yet). */
export function listWork(reader: BundleReader, target: PushTarget): PushWork[] {
  const works: PushWork[] = []
  for (const image of reader.metadata.images) {
    works.push({
      kind: 'image',
      source: image.tag ? `${image.name}:${image.tag}` : `${image.name}@${image.digest}`,
      repo: { registry: target.registry, repository: siteRepository(target, image.name) },
      reference: image.tag ?? image.digest,
      digest: image.digest,
      mediaType: image.mediaType,
      documents: [],
      blobs: [],
      missing: [],
      present: false,
    })
  }
  for (const chart of reader.metadata.charts) {
    works.push({
      kind: 'chart',
      source: `${chart.oci.repository}:${chart.oci.tag}`,
      repo: { registry: target.registry, repository: siteChartRepository(target, chart.name) },
      reference: chart.oci.tag,
      digest: chart.oci.digest,
      mediaType: MediaType.ociManifest,
      documents: [],
      blobs: [],
      missing: [],
      present: false,
    })
  }
  return works
}

export function sumSizes(blobs: Descriptor[]): number {
  return blobs.reduce((a, b) => a + b.size, 0)
}
