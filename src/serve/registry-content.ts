import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { blobPath, OCI_INDEX } from '../bundle/layout.js'
import type { BundleReader } from '../bundle/reader.js'
import { AirgapError } from '../errors.js'
import { type Descriptor, MediaType } from '../oci/media-types.js'
import { BlobReadHandles } from './blob-read-handles.js'
import { BufferPool } from './buffer-pool.js'
import { RegistryError } from './registry-errors.js'
import { parseRefName, RepositoryNames } from './registry-names.js'
import { parseDigest, RegistryOverlay } from './registry-overlay.js'
import type { OverlayLimits } from './registry-upload-limits.js'
import { type PositionalRead, SEND_CHUNK, sendPositional } from './send-positional.js'

/**
 * Content lookup for the site registry: what the bundle's OCI layout holds by repository (tags and the manifests each
 * repository may serve), and where a blob or a manifest asked for by digest or tag comes from. The overlay (what was
 * pushed to the site) is looked up first, so a site can add or retag images; the bundle is read-only.
 *
 * Everything read from the bundle is untrusted: index.json and the image indexes it lists are read only up to a size
 * cap and only a few levels deep.
 */
export const MAX_MANIFEST_BYTES = 4 << 20
const MAX_INDEX_BYTES = 64 << 20
/** Manifests that list other manifests. */
export const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList])
/** Blobs from this size on are read through file handles of their own (blob-read-handles.ts). */
const OWN_HANDLES_FROM = 4 * SEND_CHUNK
/** Send buffers kept for reuse: two per response, for 16 responses at once (32 MiB). */
const POOLED_BUFFERS = 32

interface ManifestEntry {
  mediaType: string
  size: number
}

/** A manifest or blob that can be sent: its digest, size and type, and its bytes [start, end] inclusive. */
export interface Content {
  digest: string
  size: number
  mediaType: string
  open(start: number, end: number): Readable
  /** For bundle members: sends `length` bytes from `start` of it to the response (see send-positional.ts). */
  send?(start: number, length: number, res: ServerResponse): Promise<void>
}

/** What the bundle's OCI layout holds, by repository. */
export class BundleContent {
  readonly repositories = new Map<
    string,
    { tags: Map<string, string>; manifests: Map<string, ManifestEntry> }
  >()

  private readonly pool = new BufferPool(SEND_CHUNK, POOLED_BUFFERS)

  private constructor(
    private readonly reader: BundleReader,
    private readonly handles: BlobReadHandles | undefined,
  ) {}

  static async load(reader: BundleReader): Promise<BundleContent> {
    const content = new BundleContent(reader, await BlobReadHandles.of(reader.volumes))
    const location = reader.locate(OCI_INDEX)
    if (!location) return content
    if (location.size > MAX_INDEX_BYTES)
      throw new AirgapError('E_INTEGRITY', `${OCI_INDEX} is implausibly large.`)
    const index = parseJson<{ manifests?: (Descriptor & { annotations?: Record<string, string> })[] }>(
      await reader.read(OCI_INDEX),
      OCI_INDEX,
    )
    for (const entry of index.manifests ?? []) {
      const refName = entry.annotations?.['org.opencontainers.image.ref.name']
      if (!refName || !entry.digest) continue
      const { repository, tag } = parseRefName(refName)
      let repo = content.repositories.get(repository)
      if (!repo) {
        repo = { tags: new Map(), manifests: new Map() }
        content.repositories.set(repository, repo)
      }
      if (tag) repo.tags.set(tag, entry.digest)
      await content.addManifest(repo.manifests, entry, 0)
    }
    return content
  }

  /** Adds a manifest and, for an index, the manifests it lists (those the bundle holds). */
  private async addManifest(into: Map<string, ManifestEntry>, d: Descriptor, depth: number): Promise<void> {
    const location = this.reader.locate(blobPath(d.digest))
    if (!location || into.has(d.digest)) return
    into.set(d.digest, { mediaType: d.mediaType, size: location.size })
    if (!INDEX_TYPES.has(d.mediaType) || depth > 3 || location.size > MAX_MANIFEST_BYTES) return
    const child = parseJson<{ manifests?: Descriptor[] }>(await this.reader.read(location.path), d.digest)
    for (const m of child.manifests ?? []) {
      if (m.digest && m.mediaType) await this.addManifest(into, m, depth + 1)
    }
  }

  blob(digest: string): Content | undefined {
    if (!parseDigest(digest)) return undefined
    const location = this.reader.locate(blobPath(digest))
    if (!location) return undefined
    return {
      digest,
      size: location.size,
      mediaType: 'application/octet-stream',
      open: (start, end) => this.reader.openStream(location, start, end),
      send: (start, length, res) => this.send(location.offset + start, length, res),
    }
  }

  /**
   * Sends bytes of the bundle by positional reads into pooled buffers; a large blob through file handles of its own
   * (read-ahead per blob), a small one through the reader's.
   */
  private async send(position: number, length: number, res: ServerResponse): Promise<void> {
    const shared: PositionalRead = (at, n, into) => this.reader.volumes.read(at, n, into)
    const own = this.handles && length >= OWN_HANDLES_FROM ? this.handles.open(shared) : undefined
    try {
      await sendPositional(own?.read ?? shared, position, length, res, { pool: this.pool })
    } finally {
      await own?.close()
    }
  }
}

/** What the registry serves from: the bundle, the overlay, and the names of every repository in either. */
export interface RegistryState {
  bundle: BundleContent
  overlay: RegistryOverlay
  names: RepositoryNames
}

/** Reads the bundle's index and opens (or creates) the overlay folder. */
export async function loadRegistryState(
  reader: BundleReader,
  overlayDir: string,
  limits?: OverlayLimits,
): Promise<RegistryState> {
  const bundle = await BundleContent.load(reader)
  const overlay = await RegistryOverlay.open(overlayDir, limits)
  const names = new RepositoryNames([...bundle.repositories.keys(), ...overlay.repositories()])
  return { bundle, overlay, names }
}

function overlayContent(state: RegistryState, digest: string, file: { path: string; size: number }): Content {
  return {
    digest,
    size: file.size,
    mediaType: 'application/octet-stream',
    open: (start, end) => state.overlay.openBlob(file.path, start, end),
  }
}

/** A blob of the overlay or the bundle, in whatever repository it was pushed or bundled. */
export async function findBlob(state: RegistryState, digest: string): Promise<Content | undefined> {
  const file = await state.overlay.blobFile(digest)
  return file ? overlayContent(state, digest, file) : state.bundle.blob(digest)
}

/** A manifest of repository `name` by tag or digest: the overlay's first, then the bundle's. */
export async function findManifest(
  state: RegistryState,
  name: string,
  reference: string,
): Promise<Content | undefined> {
  const isDigest = reference.includes(':')
  if (isDigest && !parseDigest(reference)) {
    throw new RegistryError('DIGEST_INVALID', `"${reference}" is not a sha256 or sha512 digest.`)
  }
  const overlayDigest = isDigest ? reference : state.overlay.tag(name, reference)
  const overlayManifest = overlayDigest ? state.overlay.manifest(name, overlayDigest) : undefined
  if (overlayDigest && overlayManifest) {
    const file = await state.overlay.blobFile(overlayDigest)
    if (file) return { ...overlayContent(state, overlayDigest, file), mediaType: overlayManifest.mediaType }
  }
  const repo = state.bundle.repositories.get(name)
  const digest = isDigest ? reference : repo?.tags.get(reference)
  const entry = digest ? repo?.manifests.get(digest) : undefined
  if (!digest || !entry) return undefined
  const content = state.bundle.blob(digest)
  return content && { ...content, mediaType: entry.mediaType }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (error) {
    throw new AirgapError('E_INTEGRITY', `${what} in the bundle is not valid JSON.`, { cause: error })
  }
}
