import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { type Descriptor, MediaType } from '../oci/media-types.js'
import { findBlob, findManifest, INDEX_TYPES, MAX_MANIFEST_BYTES } from './registry-content.js'
import { RegistryError } from './registry-errors.js'
import { type OverlayManifest, parseDigest } from './registry-overlay.js'
import {
  allow,
  contentLength,
  existingRepository,
  location,
  type RegistryRequest,
  sendContent,
  sendEmpty,
  writableRepository,
} from './registry-request.js'

/**
 * The manifests endpoint of the site registry, `/v2/<name>/manifests/<reference>`: GET and HEAD by tag or digest,
 * PUT into the overlay, DELETE of what was pushed (the bundle's own manifests are read-only).
 *
 * A pushed manifest is checked before it is stored: schemaVersion 2, a media type the registry accepts that matches
 * the Content-Type, valid descriptors, every blob (or, for an index, every manifest) it names already present (but
 * non-distributable layers), and the digest of its bytes equal to the reference when pushed by digest. Its subject,
 * artifact type and annotations are kept for the referrers API.
 */
const TAG = /^[\w][\w.-]{0,127}$/
const MANIFEST_TYPES = new Set<string>([
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
])
const NON_DISTRIBUTABLE = /(foreign|nondistributable)/

/** A manifest as pushed: only the fields the registry checks or keeps. */
interface PushedManifest {
  schemaVersion?: number
  mediaType?: string
  artifactType?: string
  config?: Descriptor
  layers?: Descriptor[]
  manifests?: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export async function handleManifests(r: RegistryRequest, path: string, reference: string): Promise<void> {
  allow(r, ['GET', 'HEAD', 'PUT', 'DELETE'])
  if (r.method === 'PUT') return await putManifest(r, path, reference)
  const name = existingRepository(r, path)
  if (r.method === 'DELETE') return await deleteManifest(r, path, name, reference)
  const content = await findManifest(r.state, name, reference)
  if (!content) {
    throw new RegistryError('MANIFEST_UNKNOWN', `${name} has no manifest ${reference}.`, { name, reference })
  }
  await sendContent(r, content, false)
}

async function putManifest(r: RegistryRequest, path: string, reference: string): Promise<void> {
  const name = writableRepository(r, path)
  const isDigest = reference.includes(':')
  const refDigest = isDigest ? parseDigest(reference) : undefined
  if (isDigest && !refDigest)
    throw new RegistryError('DIGEST_INVALID', `"${reference}" is not a supported digest.`)
  // OCI 1.1: a push by digest may tag it at once with ?tag=…; the tags applied are echoed in OCI-Tag.
  const tags = isDigest ? r.url.searchParams.getAll('tag') : [reference]
  for (const tag of tags) {
    if (!TAG.test(tag)) throw new RegistryError('MANIFEST_INVALID', `"${tag}" is not a valid tag.`, { tag })
  }
  const bytes = await readBody(r.req, MAX_MANIFEST_BYTES)
  const contentType = (r.req.headers['content-type'] ?? '').split(';')[0]!.trim()
  let doc: PushedManifest
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new RegistryError('MANIFEST_INVALID', 'The manifest is not valid JSON.')
  }
  if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 2) {
    throw new RegistryError('MANIFEST_INVALID', 'Only schemaVersion 2 manifests are accepted.')
  }
  const mediaType = doc.mediaType ?? contentType
  if (doc.mediaType && contentType && contentType !== doc.mediaType) {
    throw new RegistryError(
      'MANIFEST_INVALID',
      `The manifest says mediaType ${doc.mediaType}, but was sent as ${contentType}.`,
    )
  }
  if (!MANIFEST_TYPES.has(mediaType)) {
    throw new RegistryError(
      'MANIFEST_INVALID',
      `Manifests of type "${mediaType || 'unknown'}" are not accepted.`,
      {
        accepted: [...MANIFEST_TYPES],
      },
    )
  }
  await checkReferences(r, name, mediaType, doc)
  const subject = doc.subject ? checkDescriptor(doc.subject, 'subject').digest : undefined
  const algorithm = refDigest?.algorithm ?? 'sha256'
  const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
  if (isDigest && digest !== reference) {
    throw new RegistryError('DIGEST_INVALID', `The manifest's digest is ${digest}, not ${reference}.`, {
      expected: reference,
      actual: digest,
    })
  }
  // For the referrers API: an image's artifactType is its own, else its config's media type (OCI 1.1).
  const artifactType = [doc.artifactType, doc.config?.mediaType].find((t) => typeof t === 'string')
  const annotations = isStringRecord(doc.annotations) ? doc.annotations : undefined
  const record: OverlayManifest = {
    mediaType,
    size: bytes.length,
    ...(subject ? { subject } : {}),
    ...(artifactType ? { artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  }
  await r.state.overlay.putManifest(name, digest, bytes, record, tags)
  r.state.names.add(name)
  r.sink.emit({
    type: 'log',
    level: 'info',
    code: 'I_REGISTRY_PUSH',
    message: `Registry: ${r.user} pushed ${name}${isDigest ? '@' : ':'}${reference} (${digest})`,
    data: { user: r.user, repository: name, reference, digest },
  })
  r.res.setHeader('Location', location(r, `/v2/${path}/manifests/${digest}`))
  r.res.setHeader('Docker-Content-Digest', digest)
  if (subject) r.res.setHeader('OCI-Subject', subject)
  if (isDigest && tags.length > 0) r.res.setHeader('OCI-Tag', tags)
  sendEmpty(r, 201)
}

/** Everything a pushed manifest names must be here already: an index's manifests, an image's config and layers. */
async function checkReferences(r: RegistryRequest, name: string, mediaType: string, doc: PushedManifest) {
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests))
      throw new RegistryError('MANIFEST_INVALID', 'The index has no manifests list.')
    for (const [i, entry] of doc.manifests.entries()) {
      const d = checkDescriptor(entry, `manifests[${i}]`)
      if (!(await findManifest(r.state, name, d.digest))) {
        throw new RegistryError(
          'MANIFEST_BLOB_UNKNOWN',
          `${name} has no manifest ${d.digest} (listed in the index).`,
          {
            digest: d.digest,
          },
        )
      }
    }
    return
  }
  if (!Array.isArray(doc.layers))
    throw new RegistryError('MANIFEST_INVALID', 'The manifest has no layers list.')
  const needed = [
    checkDescriptor(doc.config, 'config'),
    ...doc.layers.map((l, i) => checkDescriptor(l, `layers[${i}]`)),
  ]
  for (const d of needed) {
    if (NON_DISTRIBUTABLE.test(d.mediaType ?? '') || (d as { urls?: string[] }).urls?.length) continue
    if (!(await findBlob(r.state, d.digest))) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `The blob ${d.digest} is not in this registry.`, {
        digest: d.digest,
      })
    }
  }
}

function checkDescriptor(d: Descriptor | undefined, what: string): Descriptor {
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !parseDigest(d.digest)) {
    throw new RegistryError('MANIFEST_INVALID', `The manifest's ${what} is not a valid descriptor.`)
  }
  if (!Number.isSafeInteger(d.size) || d.size < 0) {
    throw new RegistryError('MANIFEST_INVALID', `The manifest's ${what} has no valid size.`)
  }
  return d
}

async function deleteManifest(
  r: RegistryRequest,
  path: string,
  name: string,
  reference: string,
): Promise<void> {
  const isDigest = reference.includes(':')
  if (isDigest && !parseDigest(reference))
    throw new RegistryError('DIGEST_INVALID', `"${reference}" is not a digest.`)
  const removed = isDigest
    ? await r.state.overlay.deleteManifest(name, reference)
    : await r.state.overlay.deleteTag(name, reference)
  if (removed) return sendEmpty(r, 202)
  const repo = r.state.bundle.repositories.get(name)
  if (isDigest ? repo?.manifests.has(reference) : repo?.tags.has(reference)) {
    throw new RegistryError('UNSUPPORTED', `${path}:${reference} is part of the bundle, which is read-only.`)
  }
  throw new RegistryError('MANIFEST_UNKNOWN', `${name} has no manifest ${reference}.`, { name, reference })
}

/** The request body, refused (413) once it is over `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req)
  if (declared !== undefined && declared > limit) {
    throw new RegistryError('SIZE_INVALID', `The manifest is over ${limit} bytes.`, { limit }, 413)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit)
      throw new RegistryError('SIZE_INVALID', `The manifest is over ${limit} bytes.`, { limit }, 413)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  )
}
