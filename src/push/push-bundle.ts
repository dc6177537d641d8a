import type { BundleReader } from '../bundle/reader.js'
import { runPool } from '../concurrency/pool.js'
import { Semaphore } from '../concurrency/semaphore.js'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import type { RegistryClient } from '../oci/registry-client.js'
import { BlobHolders } from './blob-holders.js'
import { BlobPlacer } from './blob-placer.js'
import { checkRegistry } from './check-registry.js'
import { pushArtifact } from './push-artifact.js'
import type { PushContext, PushStats } from './push-context.js'
import { listWork, sumSizes } from './push-plan.js'
import { type PushResult, pushResult } from './push-result.js'
import type { PushTarget } from './target.js'
import { UploadSessions } from './upload-sessions.js'

/**
 * `push`: copies a bundle's images and chart artifacts into a site registry (Harbor, distribution) under
 * `<prefix>/<full original name>`, keeping every digest. It first asks the registry what it has (a tag that already
 * points at the bundle's digest means the whole image is there; otherwise a HEAD per blob), then moves only the rest:
 * a blob the registry holds in another repository is mounted, one being uploaded for another image is waited for and
 * mounted, and the others are streamed from the bundle file, each uploaded once. Manifests go last, children before
 * the index, so a tag never points at something incomplete. A rerun of a finished push transfers nothing; a rerun of
 * an interrupted one continues with what is missing.
 */
export interface PushBundleOptions {
  reader: BundleReader
  registry: RegistryClient
  target: PushTarget
  /** Parallel transfers (blob uploads, mounts, checks) and images worked on at once. */
  concurrency?: number
  sink: EventSink
  signal?: AbortSignal
  /** PATCH size for large blobs (default 64 MiB). */
  chunkSize?: number
  /** Blobs up to this size go in one PUT (default 16 MiB). */
  monolithicMax?: number
}

export async function pushBundle(options: PushBundleOptions): Promise<PushResult> {
  const started = Date.now()
  const { reader, registry: client, target, sink } = options
  const concurrency = Math.max(1, options.concurrency ?? 8)
  // The first failure stops every transfer still running, so the command ends promptly with that error.
  const stop = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const meta = reader.metadata
  const where = target.prefix ? `${target.registry}/${target.prefix}` : target.registry
  const root = new Task(sink, 'push', `Push ${meta.name} ${meta.version} to ${where}`, {
    data: { target: where },
  })
  const stats: PushStats = {
    blobsUploaded: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    bytesUploaded: 0,
    manifestsPushed: 0,
  }
  const context: PushContext = {
    reader,
    client,
    target,
    sink,
    signal,
    concurrency,
    limit: new Semaphore(concurrency),
    fail: (error: unknown): never => {
      if (!stop.signal.aborted) stop.abort(error)
      throw error
    },
    stats,
    holders: new BlobHolders(),
    members: new Map(),
  }

  const sessions = await UploadSessions.open(target.registry, target.prefix)
  try {
    const works = listWork(reader, target)

    // 1. What the registry has: a tag at the bundle's digest is a complete image; else a HEAD per blob.
    await checkRegistry(context, works, root)

    // 2. Push what is missing. Bytes to upload: blobs no repository of the target holds, each once.
    const pending = works.filter((w) => !w.present)
    if (pending.length > 0) {
      const placer = new BlobPlacer(context, pending, {
        sessions,
        chunkSize: options.chunkSize,
        monolithicMax: options.monolithicMax,
      })
      const pushTask = root.child(
        'push.artifacts',
        `Push ${pending.length} of ${works.length} to ${target.registry}`,
        {
          total: placer.total,
          unit: 'bytes',
          data: { registry: target.registry },
        },
      )
      await pushTask.run(
        async () => {
          // Larger images first: the long uploads start early, and the smaller images that share their layers mount
          // them once they are there.
          const ordered = [...pending].sort((a, b) => sumSizes(b.missing) - sumSizes(a.missing))
          await runPool(
            ordered,
            concurrency,
            async (work) => {
              try {
                await pushArtifact(context, placer, work, pushTask)
              } catch (error) {
                context.fail(error)
              }
            },
            signal,
          )
        },
        () =>
          `${formatBytes(stats.bytesUploaded)} uploaded, ${stats.blobsMounted} blobs mounted, ${stats.blobsSkipped} already there`,
      )
    }

    const result = pushResult(target, works, stats, Date.now() - started)
    root.end(
      'done',
      pending.length
        ? `${pending.length} pushed, ${result.upToDate} already there; ${formatBytes(stats.bytesUploaded)} uploaded`
        : `all ${works.length} already there; nothing to send`,
    )
    return result
  } catch (error) {
    const reason = stop.signal.aborted && !options.signal?.aborted ? stop.signal.reason : error
    root.end('failed', reason instanceof Error ? reason.message : String(reason))
    if (reason instanceof AirgapError && reason.code === 'E_AUTH' && target.prefix) {
      const project = target.prefix.split('/')[0]
      const hint = `On Harbor, the project "${project}" must exist and the user needs push rights in it (Developer role or above).`
      if (!reason.hints.includes(hint)) reason.hints.push(hint)
    }
    throw reason
  } finally {
    await sessions.flush()
  }
}
