import type { Task } from '../events/tasks.js'
import { logEvent } from '../events/types.js'
import { YoungGarbage } from '../net/young-garbage.js'
import type { Descriptor } from '../oci/media-types.js'
import { mountBlob } from '../oci/push-checks.js'
import { type UploadNotice, uploadBlob } from '../oci/upload-blob.js'
import { memberStream } from './member-stream.js'
import type { ArtifactCounts, PushContext } from './push-context.js'
import type { PushWork } from './push-plan.js'
import type { UploadSessions } from './upload-sessions.js'

/** Bytes sent between two collections of V8's young generation (the upload pieces sent since). */
const COLLECT_EVERY = 4 << 20
/** External memory above which a full collection follows: see YoungGarbage. */
const EXTERNAL_LIMIT = 16 << 20

/** How blobs are uploaded: where their sessions are kept, and the sizes of their requests. */
export interface BlobUploadOptions {
  sessions: UploadSessions
  /** PATCH size for large blobs (default 64 MiB). */
  chunkSize?: number
  /** Blobs up to this size go in one PUT (default 16 MiB). */
  monolithicMax?: number
}

/**
 * Puts the blobs an image lacks into its repository, each by the cheapest way there is: nothing when another image
 * of the same repository brought it already, a mount when another repository of the registry holds it (or once the
 * upload of it for another image ends), otherwise an upload streamed from the bundle file, continuing a session a
 * killed push left. It keeps the bytes to send (blobs no repository holds, each once) for the push's progress.
 */
export class BlobPlacer {
  /** Bytes to upload, by digest: blobs no repository of the target holds, each once. */
  private readonly planned = new Map<string, number>()
  /** The first upload of each blob; it resolves to the repository that received it. */
  private readonly uploads = new Map<string, Promise<string>>()
  private totalBytes: number
  private sent = 0
  /** The read pieces of the uploads are garbage once sent: see memberStream. */
  private readonly garbage = new YoungGarbage(COLLECT_EVERY, EXTERNAL_LIMIT)
  private readonly notice = (n: UploadNotice) => this.context.sink.emit(logEvent(n.code, n.message))

  constructor(
    private readonly context: PushContext,
    pending: PushWork[],
    private readonly options: BlobUploadOptions,
  ) {
    for (const work of pending) {
      for (const blob of work.missing)
        if (!context.holders.has(blob.digest)) this.planned.set(blob.digest, blob.size)
    }
    this.totalBytes = [...this.planned.values()].reduce((a, b) => a + b, 0)
  }

  /** Bytes to upload: the plan, plus the blobs a declined mount or a second upload added since. */
  get total(): number {
    return this.totalBytes
  }

  async place(
    work: PushWork,
    blob: Descriptor,
    pushTask: Task,
    task: Task,
    counts: ArtifactCounts,
  ): Promise<void> {
    const { client, reader, signal, limit, holders, stats, members } = this.context
    const { sessions } = this.options
    const { digest, size } = blob
    const repository = work.repo.repository
    // Another image of the same repository (another tag) may have brought it already, or be bringing it.
    const here = () => holders.holds(digest, repository)
    let from = holders.pick(digest, repository)
    if (!from && !here()) {
      const inflight = this.uploads.get(digest)
      if (inflight) {
        await inflight.catch(() => undefined)
        from = holders.pick(digest, repository)
      }
    }
    if (here()) {
      stats.blobsSkipped += 1
      return
    }
    let session: string | undefined
    if (from) {
      const source = from
      const mounted = await limit.run(() => mountBlob(client, work.repo, digest, source, signal))
      if (mounted.mounted) {
        holders.add(digest, repository)
        stats.blobsMounted += 1
        counts.mounted += 1
        return
      }
      session = mounted.session
    }
    if (!this.planned.delete(digest)) {
      // Not counted in the plan: a mount the registry declined, or a second upload of the same blob.
      this.totalBytes += size
    }
    const member = members.get(digest)!
    let reported = 0
    const upload = limit.run(() =>
      uploadBlob(
        client,
        work.repo,
        digest,
        size,
        { open: (offset, length) => memberStream(reader, member.offset + offset, length) },
        {
          signal,
          session,
          resume: sessions.get(repository, digest),
          onSession: (url) => sessions.set(repository, digest, url),
          chunkSize: this.options.chunkSize,
          monolithicMax: this.options.monolithicMax,
          onNotice: this.notice,
          onProgress: (bytes) => {
            if (bytes > reported) this.garbage.add(bytes - reported)
            this.sent += bytes - reported
            counts.bytes += bytes - reported
            reported = bytes
            pushTask.progress(this.sent, this.totalBytes, 'bytes')
            task.progress(counts.bytes, undefined, 'bytes', 1000)
          },
        },
      ),
    )
    if (!this.uploads.has(digest)) {
      const shared = upload.then(() => repository)
      // Waiters handle its failure; this one reports it.
      shared.catch(() => undefined)
      this.uploads.set(digest, shared)
    }
    const uploaded = await upload
    sessions.set(repository, digest, undefined)
    holders.add(digest, repository)
    stats.blobsUploaded += 1
    stats.bytesUploaded += size - uploaded.continuedFrom
    counts.uploaded += 1
  }
}
