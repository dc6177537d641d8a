import { findBlob } from './registry-content.js'
import { RegistryError } from './registry-errors.js'
import { parseDigest } from './registry-overlay.js'
import { allow, existingRepository, type RegistryRequest, sendContent } from './registry-request.js'

/**
 * The blobs endpoint of the site registry, `/v2/<name>/blobs/<digest>`: GET and HEAD of any blob the bundle or the
 * overlay holds, streamed, with a single byte range when asked for. Blobs are content-addressed and shared by every
 * repository, so they are not deleted one by one (uploads are in registry-uploads.ts).
 */
export async function handleBlobs(r: RegistryRequest, path: string, digest: string): Promise<void> {
  allow(r, ['GET', 'HEAD', 'DELETE'])
  const name = existingRepository(r, path)
  if (r.method === 'DELETE') {
    throw new RegistryError(
      'UNSUPPORTED',
      'Blobs are content-addressed and shared; they are not deleted one by one.',
    )
  }
  if (!parseDigest(digest))
    throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 or sha512 digest.`)
  const content = await findBlob(r.state, digest)
  if (!content) throw new RegistryError('BLOB_UNKNOWN', `${name} has no blob ${digest}.`, { digest })
  await sendContent(r, content, true)
}
