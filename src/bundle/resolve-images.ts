import { AirgapError } from '../errors.js'
import { withWholeBodyRetries } from '../net/retry.js'
import { sha256Digest } from '../oci/digest.js'
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  isManifestMediaType,
  type Platform,
} from '../oci/media-types.js'
import {
  formatPlatform,
  isAttestation,
  normalizePlatform,
  parsePlatform,
  platformMatches,
} from '../oci/platform.js'
import { type ImageReference, parseImageReference, repositoryName } from '../oci/reference.js'
import type { RegistryClient } from '../oci/registry-client.js'

/**
 * Resolves image references to exactly what the bundle will hold: the tag's digest, the manifests of the wanted
 * platforms, and every config and layer they need. When an index lists platforms that were not asked for, the bundle
 * keeps a filtered index (a new digest, recorded next to the upstream one), so every manifest it names is present
 * and registries such as Harbor accept it on push.
 */
export interface ImageRequest {
  source: string
  platforms: string[]
  from: string[]
}

export interface ManifestDocument {
  digest: string
  mediaType: string
  bytes: Buffer
}

export interface ResolvedImage {
  source: string
  ref: ImageReference
  name: string
  tag?: string
  digest: string
  upstreamDigest: string
  mediaType: string
  platforms: string[]
  /** Every manifest document to store: the (filtered) index first, then each platform's manifest. */
  documents: ManifestDocument[]
  manifests: { digest: string; platform: string; size: number }[]
  /** Configs and layers, unique within this image. */
  blobs: Descriptor[]
  /** Small blobs already fetched while resolving (configs of single-platform images), by digest. */
  fetched: Map<string, Buffer>
  from: string[]
}

export const UPSTREAM_DIGEST_ANNOTATION = 'io.astrago.airgap.upstream-digest'

export async function resolveImage(
  client: RegistryClient,
  request: ImageRequest,
  signal?: AbortSignal,
): Promise<ResolvedImage> {
  const ref = parseImageReference(request.source)
  const repo = { registry: ref.registry, repository: ref.repository }
  const name = repositoryName(ref)
  const top = await client.getManifest(repo, ref.digest ?? ref.tag!, signal)
  const wanted = request.platforms.map(parsePlatform)
  const documents: ManifestDocument[] = []
  const manifests: ResolvedImage['manifests'] = []
  const blobs = new Map<string, Descriptor>()
  const fetched = new Map<string, Buffer>()
  let digest = top.digest
  const mediaType = top.mediaType

  const addManifest = (doc: ManifestDocument, platform: Platform) => {
    const manifest = parseJson<ImageManifest>(doc.bytes, `${name}@${doc.digest}`)
    if (!manifest.config || !Array.isArray(manifest.layers)) {
      throw new AirgapError(
        'E_REMOTE',
        `${name}@${doc.digest} is not an image manifest (no config or layers).`,
      )
    }
    documents.push(doc)
    manifests.push({ digest: doc.digest, platform: formatPlatform(platform), size: doc.bytes.length })
    for (const d of [manifest.config, ...manifest.layers]) if (!blobs.has(d.digest)) blobs.set(d.digest, d)
  }

  if (isIndexMediaType(top.mediaType)) {
    const index = parseJson<ImageIndex>(top.bytes, `${name}@${top.digest}`)
    const runnable = index.manifests.filter((m) => !isAttestation(m.platform, m.annotations))
    const selected: Descriptor[] = []
    for (const platform of wanted) {
      const match = runnable.find((m) => platformMatches(m.platform, platform) && !selected.includes(m))
      if (!match) {
        throw new AirgapError(
          'E_REMOTE',
          `Image ${request.source} has no ${formatPlatform(platform)} variant; it has: ${
            runnable
              .map((m) => (m.platform ? formatPlatform(normalizePlatform(m.platform)) : '?'))
              .join(', ') || 'none'
          }.`,
          { hints: ['Choose platforms the image has (platforms: in the definition, or per image).'] },
        )
      }
      selected.push(match)
    }
    // Keep index order, so the filtered index is the same whatever order platforms were asked in.
    const kept = index.manifests.filter((m) => selected.includes(m))
    if (kept.length === index.manifests.length) {
      documents.push({ digest: top.digest, mediaType: top.mediaType, bytes: top.bytes })
    } else {
      const filtered: ImageIndex = {
        ...index,
        manifests: kept,
        annotations: { ...index.annotations, [UPSTREAM_DIGEST_ANNOTATION]: top.digest },
      }
      const bytes = Buffer.from(JSON.stringify(filtered))
      digest = sha256Digest(bytes)
      documents.push({ digest, mediaType: top.mediaType, bytes })
    }
    for (const entry of kept) {
      const child = await client.getManifest(repo, entry.digest, signal)
      if (!isManifestMediaType(child.mediaType)) {
        throw new AirgapError(
          'E_REMOTE',
          `${name}@${entry.digest} is ${child.mediaType}, not an image manifest.`,
        )
      }
      addManifest(
        { digest: child.digest, mediaType: child.mediaType, bytes: child.bytes },
        normalizePlatform(entry.platform!),
      )
    }
  } else if (isManifestMediaType(top.mediaType)) {
    const manifest = parseJson<ImageManifest>(top.bytes, `${name}@${top.digest}`)
    // A single-platform image: its config says which platform it is.
    const config = await withWholeBodyRetries(
      `the config of ${request.source}`,
      async () =>
        await readAll((await client.openBlob(repo, manifest.config.digest, { signal })).body, 1 << 20),
      { signal },
    )
    if (sha256Digest(config) !== manifest.config.digest) {
      throw new AirgapError(
        'E_INTEGRITY',
        `The config of ${request.source} does not match its digest ${manifest.config.digest}.`,
      )
    }
    fetched.set(manifest.config.digest, config)
    const parsed = parseJson<{ os?: string; architecture?: string; variant?: string }>(
      config,
      `${name} config`,
    )
    const platform = normalizePlatform({
      os: parsed.os ?? 'linux',
      architecture: parsed.architecture ?? 'amd64',
      variant: parsed.variant,
    })
    const unsupported = wanted.filter((w) => !platformMatches(platform, w))
    if (wanted.length > 0 && unsupported.length === wanted.length) {
      throw new AirgapError(
        'E_REMOTE',
        `Image ${request.source} is single-platform ${formatPlatform(platform)}; it has no ${wanted.map(formatPlatform).join(', ')}.`,
        { hints: ['Choose platforms the image has (platforms: in the definition, or per image).'] },
      )
    }
    addManifest({ digest: top.digest, mediaType: top.mediaType, bytes: top.bytes }, platform)
  } else {
    throw new AirgapError(
      'E_REMOTE',
      `${request.source} has media type ${top.mediaType}, which is not an image.`,
      {
        hints: ['Schema 1 and other legacy manifests are not supported; use a current tag of the image.'],
      },
    )
  }

  return {
    source: request.source,
    ref,
    name,
    tag: ref.tag,
    digest,
    upstreamDigest: top.digest,
    mediaType,
    platforms: manifests.map((m) => m.platform),
    documents,
    manifests,
    blobs: [...blobs.values()],
    fetched,
    from: request.from,
  }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (error) {
    throw new AirgapError('E_REMOTE', `${what} is not valid JSON.`, { cause: error })
  }
}

async function readAll(stream: AsyncIterable<unknown>, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    size += (chunk as Buffer).length
    if (size > cap) throw new AirgapError('E_REMOTE', `A config blob is over ${cap} bytes.`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}
