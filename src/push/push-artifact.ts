import { formatBytes } from '../events/format.js'
import type { Task } from '../events/tasks.js'
import { manifestDigest } from '../oci/push-checks.js'
import { putManifest } from '../oci/put-manifest.js'
import type { BlobPlacer } from './blob-placer.js'
import type { ArtifactCounts, PushContext } from './push-context.js'
import type { PushWork } from './push-plan.js'

/**
 * Pushes one image or chart the registry lacks, as its own task: its missing blobs first, then its manifests,
 * children before the index and the tagged document last, so the tag never points at something incomplete. A tag
 * that pointed at another digest is moved, with a warning.
 */
export async function pushArtifact(
  context: PushContext,
  placer: BlobPlacer,
  work: PushWork,
  pushTask: Task,
): Promise<void> {
  const { client, target, sink, signal, fail, stats } = context
  const counts: ArtifactCounts = { uploaded: 0, mounted: 0, bytes: 0, manifests: 0 }
  const task = pushTask.child('push.artifact', work.source, {
    data: { artifact: work.kind, source: work.source },
  })
  await task.run(
    async () => {
      const results = await Promise.allSettled(
        work.missing.map((blob) => placer.place(work, blob, pushTask, task, counts)),
      )
      const failed = results.find((r) => r.status === 'rejected')
      if (failed) fail((failed as PromiseRejectedResult).reason)
      const top = work.documents.at(-1)!
      for (const doc of work.documents.slice(0, -1)) {
        if ((await manifestDigest(client, work.repo, doc.digest, signal)) === doc.digest) continue
        await putManifest(client, work.repo, doc.digest, doc.mediaType, doc.bytes, {
          signal,
          label: `${work.source} (${doc.digest})`,
        })
        counts.manifests += 1
        stats.manifestsPushed += 1
      }
      if (work.previous && !work.reference.startsWith('sha256:')) {
        sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_TAG_MOVED',
          message: `${target.registry}/${work.repo.repository}:${work.reference} pointed at ${work.previous}; it now points at ${work.digest}.`,
          data: {
            registry: target.registry,
            repository: work.repo.repository,
            reference: work.reference,
            previous: work.previous,
            digest: work.digest,
          },
        })
      }
      await putManifest(client, work.repo, work.reference, top.mediaType, top.bytes, {
        signal,
        label: work.source,
      })
      counts.manifests += 1
      stats.manifestsPushed += 1
    },
    () =>
      [
        counts.uploaded ? `${counts.uploaded} blobs uploaded (${formatBytes(counts.bytes)})` : '',
        counts.mounted ? `${counts.mounted} mounted` : '',
        work.blobs.length - work.missing.length
          ? `${work.blobs.length - work.missing.length} already there`
          : '',
      ]
        .filter(Boolean)
        .join(', ') || 'manifests pushed',
  )
}
