import { blobPath } from '../bundle/layout.js'
import type { BundleReader, MemberLocation } from '../bundle/reader.js'
import { AirgapError } from '../errors.js'
import { sha256Digest } from '../oci/digest.js'
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  MediaType,
} from '../oci/media-types.js'
import { MAX_MANIFEST_BYTES } from '../oci/registry-client.js'
import type { ManifestDocument, PushWork } from './push-plan.js'

/**
 * Reading what a push sends from the bundle: an artifact's manifests (and an index's children), each capped in size
 * and checked against its digest, and the configs and layers they name, each located in the bundle file.
 */

/** Reads an artifact's manifests from the bundle (checked against their digests) and lists its configs and layers. */
export async function loadDocuments(
  reader: BundleReader,
  work: PushWork,
  members: Map<string, MemberLocation>,
): Promise<void> {
  const top = await readDocument(reader, work.digest, work.mediaType, work.source)
  const manifests: ManifestDocument[] = []
  const parsedTop = parseJson<ImageIndex & ImageManifest>(top.bytes, work.source)
  if (isIndexMediaType(top.mediaType) || (Array.isArray(parsedTop.manifests) && !parsedTop.config)) {
    for (const child of parsedTop.manifests ?? []) {
      manifests.push(await readDocument(reader, child.digest, child.mediaType, work.source))
    }
    work.documents = [...manifests, top]
  } else {
    manifests.push(top)
    work.documents = [top]
  }
  const blobs = new Map<string, Descriptor>()
  for (const doc of manifests) {
    const manifest = parseJson<ImageManifest>(doc.bytes, `${work.source} (${doc.digest})`)
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
      if (!blob || blobs.has(blob.digest)) continue
      const member = reader.locate(blobPath(blob.digest))
      if (!member || member.size !== blob.size) {
        throw new AirgapError(
          'E_INTEGRITY',
          member
            ? `The bundle holds ${blob.digest} of ${work.source} with ${member.size} bytes; its manifest says ${blob.size}.`
            : `The bundle has no blob ${blob.digest}, which ${work.source} needs.`,
          { hints: ['Run `astrago-airgap verify` on the bundle; copy it again if it fails.'] },
        )
      }
      members.set(blob.digest, member)
      blobs.set(blob.digest, blob)
    }
  }
  work.blobs = [...blobs.values()]
}

async function readDocument(
  reader: BundleReader,
  digest: string,
  mediaType: string | undefined,
  what: string,
): Promise<ManifestDocument> {
  const member = reader.locate(blobPath(digest))
  if (!member)
    throw new AirgapError('E_INTEGRITY', `The bundle has no manifest ${digest} of ${what}.`, {
      hints: ['Run `astrago-airgap verify` on the bundle; copy it again if it fails.'],
    })
  if (member.size > MAX_MANIFEST_BYTES)
    throw new AirgapError('E_INTEGRITY', `The manifest ${digest} of ${what} is implausibly large.`)
  const bytes = await reader.volumes.read(member.offset, member.size)
  if (sha256Digest(bytes) !== digest) {
    throw new AirgapError(
      'E_INTEGRITY',
      `The manifest ${digest} of ${what} in the bundle does not match its digest.`,
      {
        hints: ['Run `astrago-airgap verify` on the bundle; copy it again if it fails.'],
      },
    )
  }
  const declared = parseJson<{ mediaType?: string }>(bytes, what).mediaType
  return { digest, mediaType: declared ?? mediaType ?? MediaType.ociManifest, bytes }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (error) {
    throw new AirgapError('E_INTEGRITY', `A manifest of ${what} in the bundle is not valid JSON.`, {
      cause: error,
    })
  }
}
