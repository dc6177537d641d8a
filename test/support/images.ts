import { createCipheriv, createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { registryFetch, type TestRegistry } from './registry.js'

/**
 * Synthetic OCI and Docker v2 images for the tests: deterministic pseudo-random layers of chosen sizes (the same seed
 * gives the same bytes, so images can share base layers), single-platform manifests and multi-platform indexes /
 * manifest lists, pushed to a running registry through the distribution HTTP API. The content is synthetic; the
 * registry that stores it and the clients that read it back are real.
 */
export type ImageFormat = 'oci' | 'docker'

export interface Platform {
  os: string
  architecture: string
  variant?: string
}

export interface LayerSpec {
  /** The same seed (and size) gives the same layer, shared across images and platforms. */
  seed: string
  size: number
  /** When false (default), a multi-platform image gets a different layer per platform from this spec. */
  sharedAcrossPlatforms?: boolean
}

export interface ImageSpec {
  repository: string
  tag: string
  format?: ImageFormat
  /** One platform gives a plain manifest; several give an index (OCI) or manifest list (Docker). */
  platforms?: Platform[]
  layers: LayerSpec[]
  /** gzip layers (default true). Uncompressed tar layers are faster to generate for large benchmark sets. */
  gzip?: boolean
}

export interface PushedManifest {
  platform: Platform
  digest: string
  size: number
  mediaType: string
  layers: { digest: string; size: number }[]
}

export interface PushedImage {
  reference: string
  /** The digest the tag points to: the index/list for multi-platform images, else the manifest. */
  digest: string
  mediaType: string
  manifests: PushedManifest[]
}

export const MEDIA_TYPES = {
  oci: {
    index: 'application/vnd.oci.image.index.v1+json',
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    layerTar: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    layerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  },
} as const

const CHUNK = 1 << 20

/** Deterministic pseudo-random bytes (AES-128-CTR keystream keyed by the seed), streamed in 1 MiB chunks. */
export function* pseudoRandomBytes(seed: string, size: number): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32))
  const zeros = Buffer.alloc(CHUNK)
  for (let left = size; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left))
  }
}

/** A POSIX ustar header for one regular file (mtime 0, root-owned: deterministic). */
function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512)
  const put = (value: string, offset: number, length: number) => header.write(value, offset, length, 'ascii')
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0')
  put(name, 0, 100)
  put(octal(0o644, 8), 100, 8)
  put(octal(0, 8), 108, 8)
  put(octal(0, 8), 116, 8)
  put(octal(size, 12), 124, 12)
  put(octal(0, 12), 136, 12)
  put('        ', 148, 8)
  put('0', 156, 1)
  put('ustar\u000000', 257, 8)
  let sum = 0
  for (const byte of header) sum += byte
  put(`${octal(sum, 7)}\u0000`, 148, 8)
  return header
}

/** The layer as an uncompressed tar: one file of pseudo-random bytes. */
function* layerTar(seed: string, size: number): Generator<Buffer> {
  yield tarHeader(`data/${createHash('sha256').update(seed).digest('hex').slice(0, 16)}.bin`, size)
  yield* pseudoRandomBytes(seed, size)
  const padding = (512 - (size % 512)) % 512
  yield Buffer.alloc(padding + 1024)
}

interface Blob {
  digest: string
  size: number
  diffId: string
  chunks: () => Iterable<Buffer>
}

function makeLayer(seed: string, size: number, gzip: boolean): Blob {
  const tarHash = createHash('sha256')
  let tarSize = 0
  if (!gzip) {
    for (const chunk of layerTar(seed, size)) {
      tarHash.update(chunk)
      tarSize += chunk.length
    }
    const digest = `sha256:${tarHash.digest('hex')}`
    return { digest, size: tarSize, diffId: digest, chunks: () => layerTar(seed, size) }
  }
  // gzip of pseudo-random data does not shrink it; small test layers are compressed whole in memory.
  const parts: Buffer[] = []
  for (const chunk of layerTar(seed, size)) {
    tarHash.update(chunk)
    parts.push(chunk)
  }
  const compressed = gzipSync(Buffer.concat(parts), { level: 1 })
  return {
    digest: `sha256:${createHash('sha256').update(compressed).digest('hex')}`,
    size: compressed.length,
    diffId: `sha256:${tarHash.digest('hex')}`,
    chunks: () => [compressed],
  }
}

function jsonBlob(value: unknown): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(JSON.stringify(value))
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` }
}

function authHeaders(registry: TestRegistry): Record<string, string> {
  if (!registry.credentials) return {}
  const { username, password } = registry.credentials
  return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` }
}

async function blobExists(registry: TestRegistry, repository: string, digest: string): Promise<boolean> {
  const res = await registryFetch(registry, `/v2/${repository}/blobs/${digest}`, {
    method: 'HEAD',
    headers: authHeaders(registry),
  })
  return res.status === 200
}

/** Uploads a blob with POST + streamed PATCH + PUT?digest, unless the registry already has it. */
export async function pushBlob(
  registry: TestRegistry,
  repository: string,
  blob: { digest: string; chunks: () => Iterable<Buffer> },
): Promise<void> {
  if (await blobExists(registry, repository, blob.digest)) return
  const start = await registryFetch(registry, `/v2/${repository}/blobs/uploads/`, {
    method: 'POST',
    headers: authHeaders(registry),
  })
  if (start.status !== 202)
    throw new Error(`upload start for ${repository} failed: ${start.status} ${await start.text()}`)
  let location = new URL(start.headers.get('location')!, registry.url)
  const body = new ReadableStream<Uint8Array>({
    start: () => undefined,
    pull: (() => {
      const iterator = blob.chunks()[Symbol.iterator]()
      return (controller: ReadableStreamDefaultController<Uint8Array>) => {
        const next = iterator.next()
        if (next.done) controller.close()
        else controller.enqueue(next.value)
      }
    })(),
  })
  const patch = await registryFetch(registry, location.pathname + location.search, {
    method: 'PATCH',
    headers: { ...authHeaders(registry), 'content-type': 'application/octet-stream' },
    body,
    duplex: 'half',
  })
  if (patch.status !== 202)
    throw new Error(`upload of ${blob.digest} failed: ${patch.status} ${await patch.text()}`)
  location = new URL(patch.headers.get('location')!, registry.url)
  location.searchParams.set('digest', blob.digest)
  const put = await registryFetch(registry, location.pathname + location.search, {
    method: 'PUT',
    headers: authHeaders(registry),
  })
  if (put.status !== 201)
    throw new Error(`upload commit of ${blob.digest} failed: ${put.status} ${await put.text()}`)
}

export async function pushManifest(
  registry: TestRegistry,
  repository: string,
  reference: string,
  mediaType: string,
  bytes: Buffer,
): Promise<void> {
  const res = await registryFetch(registry, `/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { ...authHeaders(registry), 'content-type': mediaType },
    body: bytes,
  })
  if (res.status !== 201)
    throw new Error(`manifest PUT ${repository}:${reference} failed: ${res.status} ${await res.text()}`)
}

const platformKey = (p: Platform) => [p.os, p.architecture, p.variant].filter(Boolean).join('/')

/** Builds and pushes an image (and each platform's manifest) to the registry; returns every digest. */
export async function pushImage(registry: TestRegistry, spec: ImageSpec): Promise<PushedImage> {
  const format = spec.format ?? 'oci'
  const types = MEDIA_TYPES[format]
  const platforms = spec.platforms ?? [{ os: 'linux', architecture: 'amd64' }]
  const gzip = spec.gzip ?? true
  const manifests: PushedManifest[] = []
  for (const platform of platforms) {
    const layers = spec.layers.map((layer) =>
      makeLayer(
        layer.sharedAcrossPlatforms || platforms.length === 1
          ? layer.seed
          : `${layer.seed}@${platformKey(platform)}`,
        layer.size,
        gzip,
      ),
    )
    for (const layer of layers) await pushBlob(registry, spec.repository, layer)
    const config = jsonBlob({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created: '2026-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/bin'], Labels: { 'org.opencontainers.image.title': spec.repository } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: 'astrago-airgap test' })),
    })
    await pushBlob(registry, spec.repository, { digest: config.digest, chunks: () => [config.bytes] })
    const layerType = gzip ? types.layerGzip : types.layerTar
    const manifest = jsonBlob({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: types.config, digest: config.digest, size: config.bytes.length },
      layers: layers.map((l) => ({ mediaType: layerType, digest: l.digest, size: l.size })),
    })
    const reference = platforms.length === 1 ? spec.tag : manifest.digest
    await pushManifest(registry, spec.repository, reference, types.manifest, manifest.bytes)
    manifests.push({
      platform,
      digest: manifest.digest,
      size: manifest.bytes.length,
      mediaType: types.manifest,
      layers: layers.map((l) => ({ digest: l.digest, size: l.size })),
    })
  }
  const reference = `${registry.host}/${spec.repository}:${spec.tag}`
  if (platforms.length === 1) {
    return { reference, digest: manifests[0]!.digest, mediaType: types.manifest, manifests }
  }
  const index = jsonBlob({
    schemaVersion: 2,
    mediaType: types.index,
    manifests: manifests.map((m) => ({
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.size,
      platform: m.platform,
    })),
  })
  await pushManifest(registry, spec.repository, spec.tag, types.index, index.bytes)
  return { reference, digest: index.digest, mediaType: types.index, manifests }
}
