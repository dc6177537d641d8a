/**
 * `pull`: gets a published bundle back from an OCI registry as the identical file (or as split volumes of it). The
 * manifest is read first and checked (bundle-artifact.ts); chunks are downloaded in parallel straight into their
 * place in `<file>.partial` (or its volumes), each hashed and checked against its layer digest. A journal records
 * what is on disk, so a rerun after kill -9 asks only for the missing bytes (HTTP Range from where a chunk stopped,
 * after hashing what is already there). With `keys`, bundle.json's signature is checked as `verify --key` checks it
 * as soon as the first chunks hold it, before the other chunks are downloaded (pull-signature.ts). At the end the whole
 * file is hashed against the bundle's digest and its signature checked again, and only then is it renamed to its
 * final name: a file under the final name is always complete, and signed as required.
 */
import { createHash } from 'node:crypto'
import { mkdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { BundleReader } from '../bundle/reader.js'
import type { SignatureCheck } from '../bundle/sign-verify.js'
import { VolumeSet } from '../bundle/volumes.js'
import { runPool } from '../concurrency/pool.js'
import { AirgapError } from '../errors.js'
import { formatBytes } from '../events/format.js'
import { Task } from '../events/tasks.js'
import { type EventSink, logEvent } from '../events/types.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import type { Credential } from '../oci/docker-config.js'
import type { RegistryClient, Repo } from '../oci/registry-client.js'
import { type BundleArtifact, type BundleChunk, readBundleArtifact } from './bundle-artifact.js'
import { downloadChunk } from './download-chunk.js'
import { formatOciAddress, parseOciAddress } from './oci-url.js'
import { PullJournal } from './pull-journal.js'
import {
  checkKeyFiles,
  checkSignatureFirst,
  checkSignatureOf,
  compareWithPublished,
  type PullSignatureOptions,
  withPullContext,
} from './pull-signature.js'

export interface PullBundleOptions {
  /** oci://registry/repository:tag or @sha256:… */
  source: string
  outputDir: string
  /** Write split volumes of this many bytes (`<file>.000`, …) instead of one file. */
  splitSize?: number
  credentials?: Record<string, Credential>
  insecureRegistries?: string[]
  caFiles?: string[]
  /** Parallel chunk downloads (default 4). */
  concurrency?: number
  /** Trusted public key files (--key): bundle.json must be signed by one of them. */
  keys?: string[]
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export interface PullResult {
  reference: string
  /** The manifest's digest. */
  digest: string
  name: string
  version: string
  /** sha256 of the bundle file, checked. */
  bundleDigest: string
  size: number
  /** The bundle file, or its first volume. */
  path: string
  paths: string[]
  chunks: number
  chunksDownloaded: number
  /** Chunks continued from bytes an interrupted run left. */
  chunksResumed: number
  bytesDownloaded: number
  /** pulled now, or already there (the output held this very bundle). */
  status: 'pulled' | 'present'
  /** bundle.json's signature, checked as `verify` checks it (trusted: by one of the keys given). */
  signature: SignatureCheck
  /** The signer recorded when the bundle was published (io.astrago.airgap.bundle.signer): information only. */
  publishedSigner?: string
  durationMs: number
  bytesPerSecond: number
}

export async function pullBundle(options: PullBundleOptions): Promise<PullResult> {
  const started = Date.now()
  const address = parseOciAddress(options.source, 'pull')
  const reference = address.digest ?? address.tag
  if (!reference) {
    throw new AirgapError('E_USAGE', `pull ${options.source}: name the tag or digest to pull.`, {
      hints: ['Write oci://REGISTRY/REPOSITORY:TAG (the version published) or …@sha256:<digest>.'],
    })
  }
  await checkKeyFiles(options.keys ?? [])
  const { http, registry: client } = await createRegistryClient({
    credentials: options.credentials,
    insecureRegistries: options.insecureRegistries,
    caFiles: options.caFiles,
    concurrency: options.concurrency,
    toolVersion: options.toolVersion,
    sink: options.sink,
  })
  const repo: Repo = { registry: address.registry, repository: address.repository }
  const where = formatOciAddress(address)
  const root = new Task(options.sink, 'pull', `Pull ${where} into ${options.outputDir}`, {
    data: { reference: where, outputDir: options.outputDir },
  })
  try {
    const manifest = await client.getManifest(repo, reference, options.signal)
    const artifact = readBundleArtifact(manifest.bytes, where)
    const result = await pullArtifact(options, client, repo, where, artifact, manifest.digest, root)
    const durationMs = Date.now() - started
    root.end(
      'done',
      result.status === 'present'
        ? `${result.path} already holds this bundle`
        : `${result.path}: ${formatBytes(result.bytesDownloaded)} downloaded, sha256 checked`,
    )
    return {
      ...result,
      reference: where,
      digest: manifest.digest,
      name: artifact.name,
      version: artifact.version,
      bundleDigest: artifact.digest,
      size: artifact.size,
      chunks: artifact.chunks.length,
      ...(artifact.signer ? { publishedSigner: artifact.signer } : {}),
      durationMs,
      bytesPerSecond: Math.round(result.bytesDownloaded / Math.max(durationMs / 1000, 0.001)),
    }
  } catch (error) {
    root.end('failed', error instanceof Error ? error.message : String(error))
    throw error
  } finally {
    await http.close()
  }
}

type Progress = Pick<
  PullResult,
  'path' | 'paths' | 'chunksDownloaded' | 'chunksResumed' | 'bytesDownloaded' | 'status' | 'signature'
>

async function pullArtifact(
  options: PullBundleOptions,
  client: RegistryClient,
  repo: Repo,
  where: string,
  artifact: BundleArtifact,
  manifestDigest: string,
  root: Task,
): Promise<Progress> {
  const { signal } = options
  await mkdir(options.outputDir, { recursive: true })
  const finalPath = join(options.outputDir, artifact.file)
  const partialPath = `${finalPath}.partial`
  const splitSize = options.splitSize && options.splitSize < artifact.size ? options.splitSize : 0
  const journalPath = `${finalPath}.pull.json`
  const { journal, resumed } = await PullJournal.open(journalPath, manifestDigest, splitSize)
  const trust: PullSignatureOptions = { keys: options.keys ?? [], sink: options.sink, where }

  // A complete output from an earlier pull: check it, and keep it when it is this bundle.
  if (!resumed) {
    const existing = await VolumeSet.openForRead(finalPath).catch(() => undefined)
    if (existing) {
      try {
        const split = existing.paths.length > 1 || existing.paths[0] !== finalPath
        const sameLayout = split ? splitSize > 0 && existing.volumeSize === splitSize : splitSize === 0
        if (existing.size === artifact.size && sameLayout) {
          const digest = await root
            .child('pull.existing', `Check the existing ${existing.paths[0]}`, {
              total: artifact.size,
              unit: 'bytes',
              data: { file: existing.paths[0]! },
            })
            .run((task) =>
              hashVolumes(existing, (bytes) => task.progress(bytes, artifact.size, 'bytes'), signal),
            )
          if (digest === artifact.digest) {
            const file = existing.paths[0]!
            const signature = await checkSignatureOf(existing, artifact.chunks.length, root, {
              ...trust,
              where: file,
              file,
              quiet: false,
            }).catch((error) => {
              throw withPullContext(
                error,
                `${file} was already there and is left as it is: it is the published bundle, but not trusted. Do not install it; delete it, or pull with the right --key.`,
                { file, chunksDownloaded: 0, bytesDownloaded: 0 },
              )
            })
            compareWithPublished(signature, artifact.signer, options.sink, file)
            return {
              signature,
              path: existing.paths[0]!,
              paths: existing.paths,
              chunksDownloaded: 0,
              chunksResumed: 0,
              bytesDownloaded: 0,
              status: 'present',
            }
          }
        }
        options.sink.emit(
          logEvent(
            'W_PULL_REPLACES',
            `${existing.paths[0]} is not this bundle (or not in this layout); it will be replaced when the pull is complete.`,
            { file: existing.paths[0]! },
          ),
        )
      } finally {
        await existing.close()
      }
    }
  }

  const volumes = await VolumeSet.create(partialPath, artifact.size, splitSize || undefined)
  const stats = { chunksDownloaded: 0, chunksResumed: 0, bytesDownloaded: 0 }
  // What a signature error says became of the bytes on disk: kept, so a rerun with the right key downloads nothing again.
  const untrusted = (error: unknown) =>
    withPullContext(
      error,
      `${volumes.paths.join(', ')} and ${journalPath} are kept: their bytes match the published digests, they are only not trusted. Run pull again with the right --key to finish without downloading them again, or delete them.`,
      { partial: volumes.paths, journal: journalPath, ...stats },
    )
  let signature: SignatureCheck
  let checkedFirst = false
  try {
    const pending = artifact.chunks.filter((c) => !journal.isDone(c.index))
    const left = pending.reduce((a, c) => a + c.size - Math.min(journal.partialBytes(c.index), c.size), 0)
    if (pending.length > 0) {
      const task = root.child(
        'pull.download',
        `Download ${pending.length} of ${artifact.chunks.length} chunks (${formatBytes(left)})`,
        { total: left, unit: 'bytes', data: { reference: where, file: finalPath, chunks: pending.length } },
      )
      let got = 0
      const fetch = async (chunk: BundleChunk) => {
        if (journal.isDone(chunk.index)) return
        const outcome = await downloadChunk(client, repo, chunk, volumes, journal, {
          signal,
          sink: options.sink,
          onBytes: (bytes) => {
            got += bytes
            stats.bytesDownloaded += bytes
            task.progress(Math.min(got, left), left, 'bytes')
          },
        })
        stats.chunksDownloaded += 1
        if (outcome.resumedFrom > 0) stats.chunksResumed += 1
      }
      await task.run(
        async () => {
          // With --key, the first chunks alone, until they hold bundle.json and its signature: an untrusted bundle
          // stops here. Without, every chunk is downloaded in parallel as before, and checked on the finished file.
          if (trust.keys.length) {
            await checkSignatureFirst(volumes, artifact.chunks, fetch, task, { ...trust, file: partialPath })
            checkedFirst = true
          }
          const rest = artifact.chunks.filter((c) => !journal.isDone(c.index))
          await runPool(rest, Math.max(1, options.concurrency ?? 4), fetch, signal)
        },
        () => `${formatBytes(stats.bytesDownloaded)} downloaded`,
      )
    }
    await journal.flush()
    const digest = await root
      .child('pull.verify', `Check the sha256 of ${artifact.file}`, {
        total: artifact.size,
        unit: 'bytes',
        data: { file: finalPath, digest: artifact.digest },
      })
      .run(
        (task) => hashVolumes(volumes, (bytes) => task.progress(bytes, artifact.size, 'bytes'), signal),
        (d) => d,
      )
    if (digest !== artifact.digest) {
      journal.reset()
      throw new AirgapError(
        'E_INTEGRITY',
        `The pulled ${artifact.file} hashes to ${digest}, but its manifest says ${artifact.digest}.`,
        {
          hints: [
            'Every chunk matched its own digest, so the manifest does not describe its chunks: republish the bundle.',
          ],
        },
      )
    }
    // Again on the finished file, before it takes its final name.
    signature = await checkSignatureOf(volumes, artifact.chunks.length, root, {
      ...trust,
      file: partialPath,
      quiet: checkedFirst,
    })
    await volumes.sync()
  } catch (error) {
    await journal.flush()
    throw untrusted(error)
  } finally {
    await volumes.close()
  }
  compareWithPublished(signature, artifact.signer, options.sink, finalPath)
  const paths = volumes.paths.map((p) => finalPath + p.slice(partialPath.length))
  for (let i = 0; i < paths.length; i++) await rename(volumes.paths[i]!, paths[i]!)
  await journal.remove()
  // The file is a bundle whose bundle.json says what the manifest says.
  const reader = await BundleReader.open(paths[0]!, { scan: false })
  try {
    if (reader.metadata.name !== artifact.name || reader.metadata.version !== artifact.version) {
      options.sink.emit(
        logEvent(
          'W_PULL_NAME_MISMATCH',
          `${paths[0]} is ${reader.metadata.name} ${reader.metadata.version}, published as ${artifact.name} ${artifact.version}.`,
          {
            file: paths[0]!,
            found: `${reader.metadata.name} ${reader.metadata.version}`,
            published: `${artifact.name} ${artifact.version}`,
          },
        ),
      )
    }
  } finally {
    await reader.close()
  }
  return { path: paths[0]!, paths, ...stats, status: 'pulled', signature }
}

async function hashVolumes(
  volumes: VolumeSet,
  onProgress: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  const hash = createHash('sha256')
  let done = 0
  for await (const piece of volumes.createReadStream(0, volumes.size, { chunkSize: 4 << 20 })) {
    signal?.throwIfAborted()
    hash.update(piece as Buffer)
    done += (piece as Buffer).length
    onProgress(done)
  }
  return `sha256:${hash.digest('hex')}`
}
