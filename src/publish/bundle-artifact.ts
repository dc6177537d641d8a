/**
 * The shape of a bundle published to an OCI registry (see docs/release.md, "Publish and pull"): an OCI image manifest
 * whose artifactType names an astrago-airgap bundle, whose config is the bundle's bundle.json (so a client reads the
 * inventory without fetching gigabytes), and whose layers are the bundle file cut into equal chunks, in file order.
 * Each chunk carries its offset and a title (`<file>.000`, `<file>.001`, …, the names of split volumes), so a generic
 * client such as oras writes the chunks as volumes astrago-airgap opens directly. A manifest read back from a
 * registry is untrusted: `readBundleArtifact` checks every field publish and pull rely on.
 */
import { AirgapError } from '../errors.js'
import { type Descriptor, type ImageManifest, MediaType } from '../oci/media-types.js'

export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.astrago.airgap.bundle.v1'
/** The config blob: bundle.json, byte for byte as the bundle holds it. */
export const BUNDLE_CONFIG_MEDIA_TYPE = 'application/vnd.astrago.airgap.bundle.config.v1+json'
/** A layer: `size` bytes of the bundle file from `offset` on. */
export const BUNDLE_CHUNK_MEDIA_TYPE = 'application/vnd.astrago.airgap.bundle.chunk.v1'

export const Annotation = {
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
  description: 'org.opencontainers.image.description',
  /** sha256:<hex> of the whole bundle file. */
  bundleDigest: 'io.astrago.airgap.bundle.digest',
  /** Bytes of the whole bundle file. */
  bundleSize: 'io.astrago.airgap.bundle.size',
  /** The bundle's file name (a base name). */
  bundleFile: 'io.astrago.airgap.bundle.file',
  /** Bytes per chunk (every chunk but the last). */
  chunkSize: 'io.astrago.airgap.bundle.chunk-size',
  /** On each layer: its position in the file. */
  chunkOffset: 'io.astrago.airgap.bundle.chunk.offset',
  /** On each layer: its index, from 0. */
  chunkIndex: 'io.astrago.airgap.bundle.chunk.index',
  /**
   * The fingerprint of the key whose signature of bundle.json publish found good (absent for an unsigned bundle).
   * Information only: pull trusts a key given with --key, never this annotation.
   */
  signer: 'io.astrago.airgap.bundle.signer',
  /** The tool that published it. */
  publishedBy: 'io.astrago.airgap.published-by',
} as const

/** The most chunks a bundle is cut into (three-digit volume names). */
export const MAX_CHUNKS = 1000
/** The most bytes bundle.json may take as the config blob. */
export const MAX_CONFIG_BYTES = 64 << 20

export interface BundleChunk {
  index: number
  offset: number
  size: number
  digest: string
}

export interface BundleArtifact {
  name: string
  version: string
  description?: string
  /** sha256:<hex> of the bundle file. */
  digest: string
  size: number
  file: string
  chunkSize: number
  config: Descriptor
  chunks: BundleChunk[]
  created?: string
  /** The signer's fingerprint, as publish recorded it (upper-case hex). */
  signer?: string
  publishedBy?: string
}

/** The manifest document for a bundle: stable key order, so the same inputs give the same manifest digest. */
export function buildBundleManifest(artifact: BundleArtifact): Buffer {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: BUNDLE_ARTIFACT_TYPE,
    config: {
      mediaType: BUNDLE_CONFIG_MEDIA_TYPE,
      digest: artifact.config.digest,
      size: artifact.config.size,
    },
    layers: artifact.chunks.map((chunk) => ({
      mediaType: BUNDLE_CHUNK_MEDIA_TYPE,
      digest: chunk.digest,
      size: chunk.size,
      annotations: {
        [Annotation.title]: chunkTitle(artifact.file, chunk.index, artifact.chunks.length),
        [Annotation.chunkIndex]: String(chunk.index),
        [Annotation.chunkOffset]: String(chunk.offset),
      },
    })),
    annotations: {
      [Annotation.title]: artifact.name,
      [Annotation.version]: artifact.version,
      ...(artifact.description ? { [Annotation.description]: artifact.description } : {}),
      ...(artifact.created ? { [Annotation.created]: artifact.created } : {}),
      [Annotation.bundleDigest]: artifact.digest,
      [Annotation.bundleSize]: String(artifact.size),
      [Annotation.bundleFile]: artifact.file,
      [Annotation.chunkSize]: String(artifact.chunkSize),
      ...(artifact.signer ? { [Annotation.signer]: artifact.signer } : {}),
      ...(artifact.publishedBy ? { [Annotation.publishedBy]: artifact.publishedBy } : {}),
    },
  }
  return Buffer.from(JSON.stringify(manifest))
}

/** The layer title of a chunk: the file itself when there is one chunk, else its split-volume name. */
export function chunkTitle(file: string, index: number, count: number): string {
  return count === 1 ? file : `${file}.${String(index).padStart(3, '0')}`
}

/**
 * Reads a manifest fetched from a registry as a bundle artifact, checking everything pull relies on: the artifact
 * type, the config, chunks that tile the file exactly (contiguous, in order, equal sizes but the last), the file's
 * digest and size, and a file name that is a plain base name.
 */
export function readBundleArtifact(bytes: Buffer, where: string): BundleArtifact {
  const bad = (why: string): never => {
    throw new AirgapError('E_INPUT', `${where} is not an astrago-airgap bundle: ${why}.`, {
      hints: [
        'Give the reference a bundle was published to with `astrago-airgap publish`; `oras manifest fetch` shows what it is.',
      ],
    })
  }
  let manifest: ImageManifest
  try {
    manifest = JSON.parse(bytes.toString('utf8')) as ImageManifest
  } catch {
    return bad('its manifest is not JSON')
  }
  if (typeof manifest !== 'object' || manifest === null) bad('its manifest is not an object')
  if (
    manifest.artifactType !== BUNDLE_ARTIFACT_TYPE &&
    manifest.config?.mediaType !== BUNDLE_CONFIG_MEDIA_TYPE
  ) {
    bad(`its artifact type is ${manifest.artifactType ?? manifest.config?.mediaType ?? 'not given'}`)
  }
  const annotations = manifest.annotations ?? {}
  const text = (key: string) => {
    const value = annotations[key]
    return typeof value === 'string' ? value : bad(`the annotation ${key} is missing`)
  }
  const integer = (value: unknown, what: string) => {
    const n = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN
    return Number.isSafeInteger(n) ? n : bad(`${what} is not a byte count`)
  }
  const digest = text(Annotation.bundleDigest)
  if (!SHA256.test(digest)) bad(`${Annotation.bundleDigest} is not a sha256 digest`)
  const size = integer(text(Annotation.bundleSize), Annotation.bundleSize)
  const chunkSize = integer(text(Annotation.chunkSize), Annotation.chunkSize)
  const file = text(Annotation.bundleFile)
  if (!SAFE_FILE.test(file) || file === '.' || file === '..')
    bad(`the file name "${file}" is not a plain file name`)
  const config = manifest.config
  if (config?.mediaType !== BUNDLE_CONFIG_MEDIA_TYPE || !SHA256.test(String(config.digest))) {
    bad('its config is not a bundle.json')
  }
  const configSize = integer(String(config.size), 'the config size')
  if (configSize > MAX_CONFIG_BYTES) bad('its config is implausibly large')
  const layers = Array.isArray(manifest.layers) ? manifest.layers : bad('it has no layers')
  if (layers.length === 0 || layers.length > MAX_CHUNKS) bad(`it has ${layers.length} layers`)
  const chunks: BundleChunk[] = []
  let offset = 0
  layers.forEach((layer, index) => {
    if (layer?.mediaType !== BUNDLE_CHUNK_MEDIA_TYPE) bad(`layer ${index} is a ${layer?.mediaType}`)
    if (!SHA256.test(String(layer.digest))) bad(`layer ${index} has no sha256 digest`)
    const length = integer(String(layer.size), `the size of layer ${index}`)
    const last = index === layers.length - 1
    if (last ? length === 0 || length > chunkSize : length !== chunkSize) {
      bad(`layer ${index} is ${length} bytes, with chunks of ${chunkSize}`)
    }
    const at = layer.annotations?.[Annotation.chunkOffset]
    if (at !== undefined && at !== String(offset))
      bad(`layer ${index} says it starts at ${at}, not ${offset}`)
    chunks.push({ index, offset, size: length, digest: layer.digest })
    offset += length
  })
  if (offset !== size) bad(`its chunks hold ${offset} bytes, but the bundle is ${size}`)
  return {
    name: text(Annotation.title),
    version: text(Annotation.version),
    description: annotations[Annotation.description],
    digest,
    size,
    file,
    chunkSize,
    config: { mediaType: BUNDLE_CONFIG_MEDIA_TYPE, digest: config.digest, size: configSize },
    chunks,
    created: annotations[Annotation.created],
    signer: readSigner(annotations[Annotation.signer]),
    publishedBy: annotations[Annotation.publishedBy],
  }
}

/** The signer annotation when it is a key fingerprint (or key ID); anything else is not shown as one. */
function readSigner(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9A-Fa-f]{16,64}$/.test(value) ? value.toUpperCase() : undefined
}

/** Where a bundle's bytes are cut: `chunkSize` each, the last one shorter. */
export function planChunks(size: number, chunkSize: number): { offset: number; size: number }[] {
  const count = Math.max(1, Math.ceil(size / chunkSize))
  return Array.from({ length: count }, (_, i) => ({
    offset: i * chunkSize,
    size: Math.min(chunkSize, size - i * chunkSize),
  }))
}

const SHA256 = /^sha256:[a-f0-9]{64}$/
const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$/
