import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { blobPath } from '../bundle/layout.js'
import type { BundleReader, MemberLocation } from '../bundle/reader.js'
import { runPool } from '../concurrency/pool.js'
import { Semaphore } from '../concurrency/semaphore.js'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import { Task } from '../events/tasks.js'
import { type EventSink, logEvent } from '../events/types.js'
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  MediaType,
} from '../oci/media-types.js'
import { blobExists, manifestDigest, mountBlob } from '../oci/push-checks.js'
import { putManifest } from '../oci/put-manifest.js'
import { MAX_MANIFEST_BYTES, type RegistryClient, type Repo } from '../oci/registry-client.js'
import { type UploadNotice, uploadBlob } from '../oci/upload-blob.js'
import { type PushTarget, siteChartRepository, siteRepository } from './target.js'
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

export interface PushedArtifact {
  kind: 'image' | 'chart'
  /** The name in the bundle: docker.io/library/nginx:1.27, or charts/worker:0.1.0. */
  source: string
  /** Where it is now: harbor.site:443/astrago/docker.io/library/nginx:1.27 */
  reference: string
  digest: string
  /** pushed now, or already there (the tag pointed at the same digest). */
  status: 'pushed' | 'present'
}

export interface PushResult {
  registry: string
  prefix?: string
  images: number
  charts: number
  /** Images and charts whose tag already pointed at the bundle's digest: nothing of them was sent. */
  upToDate: number
  blobsUploaded: number
  /** Blobs the target repository already held (HEAD), for images that were not complete. */
  blobsSkipped: number
  /** Blobs linked from another repository of the registry instead of being uploaded again. */
  blobsMounted: number
  bytesUploaded: number
  manifestsPushed: number
  durationMs: number
  bytesPerSecond: number
  artifacts: PushedArtifact[]
}

/**
 * Bytes read from the bundle per chunk of an upload stream. With 8 uploads at once every stream holds one or two
 * chunks, so this sets much of push's memory; 256 KiB keeps the throughput (docs/benchmarks.md, bench/push-memory.ts).
 */
const READ_CHUNK = 256 << 10

interface ManifestDocument {
  digest: string
  mediaType: string
  bytes: Buffer
}

interface Work {
  kind: 'image' | 'chart'
  source: string
  repo: Repo
  /** The tag, or the digest for images the bundle holds by digest only. */
  reference: string
  digest: string
  mediaType: string
  /** Children first, the tagged document last. */
  documents: ManifestDocument[]
  blobs: Descriptor[]
  /** Blobs the repository lacks (after the check). */
  missing: Descriptor[]
  present: boolean
  /** The digest the tag pointed at before, when it pointed elsewhere. */
  previous?: string
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

export async function pushBundle(options: PushBundleOptions): Promise<PushResult> {
  const started = Date.now()
  const { reader, registry: client, target, sink } = options
  const concurrency = Math.max(1, options.concurrency ?? 8)
  // The first failure stops every transfer still running, so the command ends promptly with that error.
  const stop = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const limit = new Semaphore(concurrency)
  const meta = reader.metadata
  const where = target.prefix ? `${target.registry}/${target.prefix}` : target.registry
  const root = new Task(sink, 'push', `Push ${meta.name} ${meta.version} to ${where}`, {
    data: { target: where },
  })
  const stats = { blobsUploaded: 0, blobsSkipped: 0, blobsMounted: 0, bytesUploaded: 0, manifestsPushed: 0 }
  /** Which repositories of the target hold a blob: sources for mounts. */
  const holders = new Map<string, Set<string>>()
  const addHolder = (digest: string, repository: string) => {
    const set = holders.get(digest) ?? new Set<string>()
    set.add(repository)
    holders.set(digest, set)
  }
  const pickHolder = (digest: string, repository: string) =>
    [...(holders.get(digest) ?? [])].find((r) => r !== repository)
  const fail = (error: unknown): never => {
    if (!stop.signal.aborted) stop.abort(error)
    throw error
  }

  const sessions = await UploadSessions.open(target.registry, target.prefix)
  try {
    const works = listWork(reader, target)
    const members = new Map<string, MemberLocation>()

    // 1. What the registry has: a tag at the bundle's digest is a complete image; else a HEAD per blob.
    const checkTask = root.child('push.check', `Check what ${target.registry} holds`, {
      total: works.length,
      unit: 'items',
      data: { registry: target.registry },
    })
    await checkTask.run(
      async (task) => {
        let done = 0
        await runPool(
          works,
          concurrency,
          async (work) => {
            try {
              await loadDocuments(reader, work, members)
              const current = await limit.run(() => manifestDigest(client, work.repo, work.reference, signal))
              if (current === work.digest) {
                work.present = true
                for (const blob of work.blobs) addHolder(blob.digest, work.repo.repository)
              } else {
                if (current) work.previous = current
                await Promise.all(
                  work.blobs.map(async (blob) => {
                    if (await limit.run(() => blobExists(client, work.repo, blob.digest, signal))) {
                      addHolder(blob.digest, work.repo.repository)
                      stats.blobsSkipped += 1
                    } else work.missing.push(blob)
                  }),
                )
              }
            } catch (error) {
              fail(error)
            }
            task.progress(++done, works.length, 'items')
          },
          signal,
        )
      },
      () => {
        const present = works.filter((w) => w.present).length
        return `${present} of ${works.length} already there`
      },
    )

    // 2. Push what is missing. Bytes to upload: blobs no repository of the target holds, each once.
    const pending = works.filter((w) => !w.present)
    const planned = new Map<string, number>()
    for (const work of pending) {
      for (const blob of work.missing) if (!holders.has(blob.digest)) planned.set(blob.digest, blob.size)
    }
    let total = [...planned.values()].reduce((a, b) => a + b, 0)
    let sent = 0
    const uploads = new Map<string, Promise<string>>()
    const notice = (n: UploadNotice) => sink.emit(logEvent(n.code, n.message))

    const placeBlob = async (
      work: Work,
      blob: Descriptor,
      pushTask: Task,
      task: Task,
      counts: ArtifactCounts,
    ) => {
      const { digest, size } = blob
      const repository = work.repo.repository
      // Another image of the same repository (another tag) may have brought it already, or be bringing it.
      const here = () => holders.get(digest)?.has(repository) ?? false
      let from = pickHolder(digest, repository)
      if (!from && !here()) {
        const inflight = uploads.get(digest)
        if (inflight) {
          await inflight.catch(() => undefined)
          from = pickHolder(digest, repository)
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
          addHolder(digest, repository)
          stats.blobsMounted += 1
          counts.mounted += 1
          return
        }
        session = mounted.session
      }
      if (!planned.delete(digest)) {
        // Not counted in the plan: a mount the registry declined, or a second upload of the same blob.
        total += size
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
            chunkSize: options.chunkSize,
            monolithicMax: options.monolithicMax,
            onNotice: notice,
            onProgress: (bytes) => {
              sent += bytes - reported
              counts.bytes += bytes - reported
              reported = bytes
              pushTask.progress(sent, total, 'bytes')
              task.progress(counts.bytes, undefined, 'bytes', 1000)
            },
          },
        ),
      )
      if (!uploads.has(digest)) {
        const shared = upload.then(() => repository)
        // Waiters handle its failure; this one reports it.
        shared.catch(() => undefined)
        uploads.set(digest, shared)
      }
      const uploaded = await upload
      sessions.set(repository, digest, undefined)
      addHolder(digest, repository)
      stats.blobsUploaded += 1
      stats.bytesUploaded += size - uploaded.continuedFrom
      counts.uploaded += 1
    }

    const pushWork = async (work: Work, pushTask: Task) => {
      const counts: ArtifactCounts = { uploaded: 0, mounted: 0, bytes: 0, manifests: 0 }
      const task = pushTask.child('push.artifact', work.source, {
        data: { artifact: work.kind, source: work.source },
      })
      await task.run(
        async () => {
          const results = await Promise.allSettled(
            work.missing.map((blob) => placeBlob(work, blob, pushTask, task, counts)),
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

    if (pending.length > 0) {
      const pushTask = root.child(
        'push.artifacts',
        `Push ${pending.length} of ${works.length} to ${target.registry}`,
        {
          total,
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
                await pushWork(work, pushTask)
              } catch (error) {
                fail(error)
              }
            },
            signal,
          )
        },
        () =>
          `${formatBytes(stats.bytesUploaded)} uploaded, ${stats.blobsMounted} blobs mounted, ${stats.blobsSkipped} already there`,
      )
    }

    const durationMs = Date.now() - started
    const result: PushResult = {
      registry: target.registry,
      ...(target.prefix ? { prefix: target.prefix } : {}),
      images: works.filter((w) => w.kind === 'image').length,
      charts: works.filter((w) => w.kind === 'chart').length,
      upToDate: works.length - pending.length,
      ...stats,
      durationMs,
      bytesPerSecond: Math.round(stats.bytesUploaded / Math.max(durationMs / 1000, 0.001)),
      artifacts: works.map((w) => ({
        kind: w.kind,
        source: w.source,
        reference: `${target.registry}/${w.repo.repository}${w.reference.startsWith('sha256:') ? '@' : ':'}${w.reference}`,
        digest: w.digest,
        status: w.present ? 'present' : 'pushed',
      })),
    }
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

interface ArtifactCounts {
  uploaded: number
  mounted: number
  bytes: number
  manifests: number
}

/** The images and charts of the bundle, with their target repositories (nothing read yet). */
function listWork(reader: BundleReader, target: PushTarget): Work[] {
  const works: Work[] = []
  for (const image of reader.metadata.images) {
    works.push({
      kind: 'image',
      source: image.tag ? `${image.name}:${image.tag}` : `${image.name}@${image.digest}`,
      repo: { registry: target.registry, repository: siteRepository(target, image.name) },
      reference: image.tag ?? image.digest,
      digest: image.digest,
      mediaType: image.mediaType,
      documents: [],
      blobs: [],
      missing: [],
      present: false,
    })
  }
  for (const chart of reader.metadata.charts) {
    works.push({
      kind: 'chart',
      source: `${chart.oci.repository}:${chart.oci.tag}`,
      repo: { registry: target.registry, repository: siteChartRepository(target, chart.name) },
      reference: chart.oci.tag,
      digest: chart.oci.digest,
      mediaType: MediaType.ociManifest,
      documents: [],
      blobs: [],
      missing: [],
      present: false,
    })
  }
  return works
}

/** Reads an artifact's manifests from the bundle (checked against their digests) and lists its configs and layers. */
async function loadDocuments(
  reader: BundleReader,
  work: Work,
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
  if (sha256(bytes) !== digest) {
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

function sumSizes(blobs: Descriptor[]): number {
  return blobs.reduce((a, b) => a + b.size, 0)
}

/** `length` bytes of the bundle from `position`, read in 256 KiB pieces as the consumer asks (backpressure). */
function memberStream(reader: BundleReader, position: number, length: number): Readable {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let done = 0; done < length; ) {
      const size = Math.min(READ_CHUNK, length - done)
      // Every byte is overwritten by the read (or it fails), so the buffer need not be zero-filled first.
      yield await reader.volumes.read(position + done, size, Buffer.allocUnsafe(size))
      done += size
    }
  }
  return Readable.from(pieces(), { objectMode: false, highWaterMark: READ_CHUNK })
}
