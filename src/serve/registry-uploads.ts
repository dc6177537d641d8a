import { findBlob } from './registry-content.js'
import { RegistryError } from './registry-errors.js'
import { parseDigest, type UploadSession } from './registry-overlay.js'
import {
  allow,
  contentLength,
  hasBody,
  location,
  type RegistryRequest,
  sendEmpty,
  writableRepository,
} from './registry-request.js'

/**
 * Blob uploads to the site registry, `/v2/<name>/blobs/uploads/[<id>]`, into the overlay:
 *
 * - POST starts an upload; with `?mount=<digest>` of a blob the registry already has it is done at once (201), with
 *   `?digest=` the body is the whole blob (a monolithic upload).
 * - PATCH appends a chunk (at the offset its Content-Range gives, if any); GET tells how far an upload is; PUT with
 *   `?digest=` appends a last chunk, if there is one, and completes the upload, which checks the digest; DELETE
 *   cancels it.
 *
 * The overlay streams the bytes to disk and hashes them as they come; nothing is held in memory.
 */
export async function handleUploads(r: RegistryRequest, path: string, id: string): Promise<void> {
  if (!id) return await startUpload(r, path)
  const { overlay } = r.state
  allow(r, ['GET', 'PATCH', 'PUT', 'DELETE'])
  const name = writableRepository(r, path)
  const session = await overlay.getUpload(id)
  if (!session || session.name !== name) {
    r.req.resume()
    throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `There is no upload ${id} in ${name}.`, { uuid: id })
  }
  if (r.method === 'GET') return uploadStatus(r, path, session, 204)
  if (r.method === 'DELETE') {
    await overlay.cancelUpload(session)
    return sendEmpty(r, 204)
  }
  const range = parseContentRange(r.req.headers['content-range'])
  let current = session
  if (r.method === 'PATCH' || hasBody(r.req)) {
    const length = range ? range.end - range.start + 1 : contentLength(r.req)
    const declared = contentLength(r.req)
    if (range && declared !== undefined && declared !== length) {
      r.req.resume()
      throw new RegistryError(
        'SIZE_INVALID',
        `Content-Range says ${length} bytes, Content-Length ${declared}.`,
      )
    }
    current = await overlay.appendUpload(session, r.req, { start: range?.start, length })
  }
  if (r.method === 'PATCH') return uploadStatus(r, path, current, 202)
  const digest = r.url.searchParams.get('digest')
  if (!digest) throw new RegistryError('DIGEST_INVALID', 'Completing an upload needs ?digest=.')
  await overlay.completeUpload(current, digest)
  return blobCreated(r, path, name, digest)
}

/** POST: a cross-repository mount, a monolithic upload, or the start of a chunked one. */
async function startUpload(r: RegistryRequest, path: string): Promise<void> {
  const { overlay } = r.state
  allow(r, ['POST'])
  const name = writableRepository(r, path)
  const mount = r.url.searchParams.get('mount')
  if (mount && parseDigest(mount) && (await findBlob(r.state, mount))) {
    await overlay.ensureRepository(name)
    r.state.names.add(name)
    r.res.setHeader('Location', location(r, `/v2/${path}/blobs/${mount}`))
    r.res.setHeader('Docker-Content-Digest', mount)
    return sendEmpty(r, 201)
  }
  const session = await overlay.startUpload(name)
  const digest = r.url.searchParams.get('digest')
  if (digest !== null) {
    try {
      await overlay.appendUpload(session, r.req, { length: contentLength(r.req) })
      await overlay.completeUpload(session, digest)
    } catch (error) {
      await overlay.cancelUpload(session)
      throw error
    }
    return blobCreated(r, path, name, digest)
  }
  r.req.resume()
  return uploadStatus(r, path, session, 202)
}

function blobCreated(r: RegistryRequest, path: string, name: string, digest: string): void {
  r.state.names.add(name)
  r.res.setHeader('Location', location(r, `/v2/${path}/blobs/${digest}`))
  r.res.setHeader('Docker-Content-Digest', digest)
  sendEmpty(r, 201)
}

function uploadStatus(r: RegistryRequest, path: string, session: UploadSession, status: number): void {
  r.res.setHeader('Location', location(r, `/v2/${path}/blobs/uploads/${session.id}`))
  r.res.setHeader('Range', `0-${Math.max(0, session.size - 1)}`)
  r.res.setHeader('Docker-Upload-UUID', session.id)
  sendEmpty(r, status)
}

/**
 * Content-Range of an upload chunk: `<start>-<end>` (the distribution spec's form) or `bytes <start>-<end>[/size]`.
 * This is a request header of uploads, not the Range of downloads (net/http-range.ts).
 */
function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (!header) return undefined
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim())
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError('RANGE_INVALID', `Content-Range "${header}" is not <start>-<end>.`)
  }
  return { start: Number(m[1]), end: Number(m[2]) }
}
