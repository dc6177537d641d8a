/**
 * `publish`: puts a bundle file into an OCI registry as one artifact (see bundle-artifact.ts): bundle.json as the
 * config, the file in chunks as layers, pushed with the same resumable uploads `push` uses (sessions kept on disk, a
 * cut connection continues where the registry says it stands). It hashes the file first (cached), then asks the
 * registry what it has: a tag that already holds this bundle means nothing is sent; otherwise a HEAD per blob, and
 * only the missing chunks are uploaded. The manifest goes last, so the tag never names an incomplete bundle. A signed
 * bundle's signature is checked first, as `verify` checks it without a key (it must match bundle.json), and its
 * signer's fingerprint is recorded as an annotation, for information: trust comes from `pull --key`.
 */
import { BUNDLE_JSON } from '../bundle/layout.js'
import { BundleReader } from '../bundle/reader.js'
import { type BundleHead, readBundleHeadFrom } from '../bundle/sign-head.js'
import { checkBundleSignature, type SignatureCheck } from '../bundle/sign-verify.js'
import { runPool } from '../concurrency/pool.js'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import { Task } from '../events/tasks.js'
import { type EventSink, logEvent } from '../events/types.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import { sha256Digest } from '../oci/digest.js'
import type { Credential } from '../oci/docker-config.js'
import { MediaType } from '../oci/media-types.js'
import { blobExists, manifestDigest } from '../oci/push-checks.js'
import { putManifest } from '../oci/put-manifest.js'
import type { RegistryClient, Repo } from '../oci/registry-client.js'
import { type UploadNotice, uploadBlob } from '../oci/upload-blob.js'
import { UploadSessions } from '../push/upload-sessions.js'
import {
  BUNDLE_CONFIG_MEDIA_TYPE,
  type BundleArtifact,
  buildBundleManifest,
  MAX_CHUNKS,
  MAX_CONFIG_BYTES,
  readBundleArtifact,
} from './bundle-artifact.js'
import { hashChunks } from './hash-chunks.js'
import { formatOciAddress, parseOciAddress } from './oci-url.js'

export interface PublishBundleOptions {
  /** The bundle file or its first split volume. */
  bundle: string
  /** oci://registry/repository[:tag]; the tag defaults to the bundle's version. */
  target: string
  /** Bytes per layer (default 512 MiB). */
  chunkSize?: number
  credentials?: Record<string, Credential>
  insecureRegistries?: string[]
  caFiles?: string[]
  /** Parallel chunk uploads (default 4). */
  concurrency?: number
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
  /** Where the upload sessions and the digest cache live (default $XDG_CACHE_HOME/astrago-airgap). */
  cacheDir?: string
}

export interface PublishResult {
  /** oci://registry/repository:tag */
  reference: string
  /** The manifest's digest: pull by oci://registry/repository@<digest> for exactly this bundle. */
  digest: string
  name: string
  version: string
  /** sha256 of the bundle file. */
  bundleDigest: string
  size: number
  chunks: number
  chunkSize: number
  /** The fingerprint of the key that signed bundle.json (recorded as io.astrago.airgap.bundle.signer); absent: unsigned. */
  signer?: string
  /** published now, or already there (the tag held this very bundle). */
  status: 'published' | 'present'
  blobsUploaded: number
  /** Blobs the registry already held. */
  blobsSkipped: number
  /** Bytes sent in this run (an upload continued from an interrupted run counts only what was left). */
  bytesUploaded: number
  durationMs: number
  bytesPerSecond: number
}

export const DEFAULT_PUBLISH_CHUNK_SIZE = 512 << 20

export async function publishBundle(options: PublishBundleOptions): Promise<PublishResult> {
  const started = Date.now()
  const address = parseOciAddress(options.target, 'publish')
  if (address.digest) {
    throw new AirgapError('E_USAGE', `publish ${options.target}: publish to a tag, not a digest.`, {
      hints: ['Write oci://REGISTRY/REPOSITORY:TAG; the digest is printed when the bundle is published.'],
    })
  }
  const chunkSize = options.chunkSize ?? DEFAULT_PUBLISH_CHUNK_SIZE
  // A delta bundle is published as the file it is, without its base.
  const reader = await BundleReader.open(options.bundle, { alone: true })
  try {
    if (reader.kind !== 'file') {
      throw new AirgapError(
        'E_USAGE',
        `${options.bundle} is an extracted folder; publish takes the bundle file.`,
        {
          hints: [
            'Give the bundle .tar file (or its first volume, .000) that `astrago-airgap bundle` wrote.',
          ],
        },
      )
    }
    const count = Math.ceil(reader.volumes.size / chunkSize)
    if (count > MAX_CHUNKS) {
      throw new AirgapError(
        'E_USAGE',
        `--chunk-size ${chunkSize} cuts ${options.bundle} into ${count} layers; at most ${MAX_CHUNKS} are allowed.`,
        { hints: [`Use --chunk-size ${Math.ceil(reader.volumes.size / MAX_CHUNKS / (1 << 20))}M or more.`] },
      )
    }
    const json = reader.locate(BUNDLE_JSON)
    if (!json || json.size > MAX_CONFIG_BYTES) {
      throw new AirgapError('E_INTEGRITY', `${options.bundle} has no usable ${BUNDLE_JSON}.`)
    }
    // A bundle whose bundle.json no longer matches its signature is not published (verify and install refuse it).
    const head = await readBundleHeadFrom(reader.volumes, options.bundle)
    const signature = await checkBundleSignature(head, { path: options.bundle, sink: options.sink })
    const { http, registry: client } = await createRegistryClient({
      credentials: options.credentials,
      insecureRegistries: options.insecureRegistries,
      caFiles: options.caFiles,
      concurrency: options.concurrency,
      toolVersion: options.toolVersion,
      sink: options.sink,
    })
    try {
      return await publishWith(
        options,
        reader,
        client,
        address,
        chunkSize,
        json,
        { head, signature },
        started,
      )
    } finally {
      await http.close()
    }
  } finally {
    await reader.close()
  }
}

async function publishWith(
  options: PublishBundleOptions,
  reader: BundleReader,
  client: RegistryClient,
  address: ReturnType<typeof parseOciAddress>,
  chunkSize: number,
  json: { offset: number; size: number },
  signed: { head: BundleHead; signature: SignatureCheck },
  started: number,
): Promise<PublishResult> {
  const { sink, signal } = options
  const meta = reader.metadata
  const tag = address.tag ?? meta.version
  const repo: Repo = { registry: address.registry, repository: address.repository }
  const reference = formatOciAddress({ ...address, tag })
  const root = new Task(sink, 'publish', `Publish ${meta.name} ${meta.version} to ${reference}`, {
    data: { reference, name: meta.name, version: meta.version },
  })
  const concurrency = Math.max(1, options.concurrency ?? 4)
  const stats = { blobsUploaded: 0, blobsSkipped: 0, bytesUploaded: 0 }
  const sessions = await UploadSessions.open(repo.registry, `publish/${repo.repository}`, options.cacheDir)
  try {
    // 1. Digests of the chunks and the file (from the cache when this file was hashed before).
    const size = reader.volumes.size
    const chunks = Math.ceil(size / chunkSize)
    const hashTask = root.child('publish.hash', `Hash ${formatBytes(size)} in ${chunks} chunks`, {
      total: size,
      unit: 'bytes',
      data: { file: reader.volumes.paths[0]!, size, chunks, chunkSize },
    })
    let cached = false
    const digests = await hashTask.run(
      (task) =>
        hashChunks({
          source: reader.volumes,
          chunkSize,
          signal,
          cacheDir: options.cacheDir,
          onProgress: (bytes) => task.progress(bytes, size, 'bytes'),
          onCached: () => {
            cached = true
          },
        }),
      (d) => (cached ? `${d.digest} (remembered from an earlier run)` : d.digest),
    )
    const configBytes = await reader.volumes.read(json.offset, json.size)
    if (!configBytes.equals(signed.head.bundleJson)) {
      throw new AirgapError(
        'E_INTEGRITY',
        `${BUNDLE_JSON} of ${options.bundle} changed while it was being published.`,
      )
    }
    const signer = signed.signature.signed ? signed.signature.fingerprint : undefined
    const configDigest = sha256Digest(configBytes)
    const sourceDate = process.env.SOURCE_DATE_EPOCH
    const artifact: BundleArtifact = {
      name: meta.name,
      version: meta.version,
      description: meta.description,
      digest: digests.digest,
      size,
      file: fileName(reader.volumes.paths[0]!, reader.volumes.paths.length > 1),
      chunkSize,
      config: { mediaType: BUNDLE_CONFIG_MEDIA_TYPE, digest: configDigest, size: json.size },
      chunks: digests.chunks.map((c, index) => ({ index, ...c })),
      created: new Date(
        sourceDate && /^\d+$/.test(sourceDate) ? Number(sourceDate) * 1000 : Date.now(),
      ).toISOString(),
      ...(signer ? { signer } : {}),
      publishedBy: `astrago-airgap ${options.toolVersion}`,
    }
    const manifest = buildBundleManifest(artifact)

    // 2. Does the tag already hold this bundle?
    const current = await manifestDigest(client, repo, tag, signal)
    if (current) {
      const existing = await client.getManifest(repo, current, signal)
      let same = false
      try {
        const there = readBundleArtifact(existing.bytes, reference)
        same =
          there.digest === artifact.digest &&
          there.chunks.length === artifact.chunks.length &&
          there.chunks.every((c, i) => c.digest === artifact.chunks[i]!.digest) &&
          there.config.digest === configDigest
      } catch {}
      if (same) {
        root.end('done', `${reference} already holds this bundle (${current}); nothing to send`)
        return result('present', current)
      }
      sink.emit(
        logEvent(
          'W_TAG_MOVED',
          `${reference} pointed at ${current}, another bundle or artifact; it will point at this bundle.`,
          {
            registry: repo.registry,
            repository: repo.repository,
            reference: tag,
            previous: current,
            digest: sha256Digest(manifest),
          },
        ),
      )
    }

    // 3. Which blobs the registry lacks.
    const blobs = [
      { digest: configDigest, offset: json.offset, size: json.size, label: BUNDLE_JSON },
      ...artifact.chunks.map((c) => ({ ...c, label: `chunk ${c.index + 1} of ${artifact.chunks.length}` })),
    ]
    const missing: typeof blobs = []
    const checkTask = root.child('publish.check', `Check what ${repo.registry} holds`, {
      total: blobs.length,
      unit: 'items',
      data: { reference, blobs: blobs.length },
    })
    await checkTask.run(
      async (task) => {
        let done = 0
        await runPool(
          blobs,
          concurrency * 2,
          async (blob) => {
            if (await blobExists(client, repo, blob.digest, signal)) stats.blobsSkipped += 1
            else missing.push(blob)
            task.progress(++done, blobs.length, 'items')
          },
          signal,
        )
      },
      () => `${blobs.length - missing.length} of ${blobs.length} blobs already there`,
    )

    // 4. Upload them, each resumable.
    const total = missing.reduce((a, b) => a + b.size, 0)
    if (missing.length > 0) {
      let sent = 0
      const notice = (n: UploadNotice) => sink.emit(logEvent(n.code, n.message))
      const uploadTask = root.child(
        'publish.upload',
        `Upload ${missing.length} blobs (${formatBytes(total)})`,
        { total, unit: 'bytes', data: { reference, blobs: missing.length } },
      )
      await uploadTask.run(
        () =>
          runPool(
            missing,
            concurrency,
            async (blob) => {
              let reported = 0
              const uploaded = await uploadBlob(
                client,
                repo,
                blob.digest,
                blob.size,
                {
                  open: (offset, length) =>
                    reader.volumes.createReadStream(blob.offset + offset, length, { chunkSize: 4 << 20 }),
                },
                {
                  signal,
                  resume: sessions.get(repo.repository, blob.digest),
                  onSession: (url) => sessions.set(repo.repository, blob.digest, url),
                  onNotice: notice,
                  onProgress: (bytes) => {
                    sent += bytes - reported
                    reported = bytes
                    uploadTask.progress(sent, total, 'bytes')
                  },
                },
              )
              sessions.set(repo.repository, blob.digest, undefined)
              stats.blobsUploaded += 1
              stats.bytesUploaded += blob.size - uploaded.continuedFrom
            },
            signal,
          ),
        () => `${formatBytes(stats.bytesUploaded)} uploaded`,
      )
    }

    // 5. The manifest, last.
    const digest = await putManifest(client, repo, tag, MediaType.ociManifest, manifest, {
      signal,
      label: reference,
    })
    root.end(
      'done',
      `${reference}@${digest}: ${formatBytes(stats.bytesUploaded)} uploaded, ${stats.blobsSkipped} blobs already there`,
    )
    return result('published', digest)

    function result(status: PublishResult['status'], manifestDigest: string): PublishResult {
      const durationMs = Date.now() - started
      return {
        reference,
        digest: manifestDigest,
        name: meta.name,
        version: meta.version,
        bundleDigest: artifact.digest,
        size,
        chunks: artifact.chunks.length,
        chunkSize,
        ...(signer ? { signer } : {}),
        status,
        ...stats,
        durationMs,
        bytesPerSecond: Math.round(stats.bytesUploaded / Math.max(durationMs / 1000, 0.001)),
      }
    }
  } catch (error) {
    root.end('failed', error instanceof Error ? error.message : String(error))
    throw error
  } finally {
    await sessions.flush()
  }
}

/** The file name recorded in the artifact: the bundle's own name (without the volume suffix of a split bundle). */
function fileName(path: string, split: boolean): string {
  const base = path.split('/').pop()!
  const name = split ? base.replace(/\.\d{3}$/, '') : base
  return /^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$/.test(name) ? name : 'bundle.tar'
}
