/**
 * One chunk of a pull: downloaded straight into its place in the partial file (or its volumes), hashed against its
 * layer digest as it arrives, continuing from the bytes the journal says are there, retried with Range requests when
 * a connection breaks.
 */
import { createHash, type Hash } from 'node:crypto'
import type { VolumeSet } from '../bundle/volumes.js'
import { AirgapError } from '../errors.js'
import { type EventSink, logEvent } from '../events/types.js'
import { backoffDelay, defaultRetryPolicy, sleep } from '../net/retry.js'
import type { RegistryClient, Repo } from '../oci/registry-client.js'
import type { BundleChunk } from './bundle-artifact.js'
import type { PullJournal } from './pull-journal.js'

const ATTEMPTS = 6

export interface DownloadOptions {
  signal?: AbortSignal
  sink: EventSink
  onBytes: (bytes: number) => void
}

/**
 * Downloads one chunk into its place, continuing from the bytes the journal says are there (hashed again from the
 * file first). A connection that breaks mid-way continues with a Range request; a chunk whose bytes do not match its
 * digest is fetched again from its start once, then it is an integrity error.
 */
export async function downloadChunk(
  client: RegistryClient,
  repo: Repo,
  chunk: BundleChunk,
  volumes: VolumeSet,
  journal: PullJournal,
  options: DownloadOptions,
): Promise<{ resumedFrom: number }> {
  const { signal } = options
  let position = Math.min(journal.partialBytes(chunk.index), chunk.size)
  let hash = createHash('sha256')
  if (position > 0) await hashRange(volumes, chunk.offset, position, hash, signal)
  const resumedFrom = position
  if (position > 0) {
    options.sink.emit(
      logEvent(
        'I_PULL_RESUMED',
        `Continuing chunk ${chunk.index + 1} (${chunk.digest}) at byte ${position}, where an interrupted run left it`,
        { index: chunk.index, digest: chunk.digest, offset: position },
      ),
    )
  }
  let failures = 0
  let refetched = false
  for (;;) {
    signal?.throwIfAborted()
    let writeError: unknown
    try {
      if (position < chunk.size) {
        const { body, partial } = await client.openBlob(repo, chunk.digest, { offset: position, signal })
        if (position > 0 && !partial) {
          // The registry ignored the range: take the chunk from its start.
          position = 0
          hash = createHash('sha256')
        }
        for await (const piece of body as AsyncIterable<Buffer>) {
          if (position + piece.length > chunk.size) {
            body.destroy()
            throw new AirgapError(
              'E_INTEGRITY',
              `${repo.registry} sent more than the ${chunk.size} bytes of chunk ${chunk.index + 1} (${chunk.digest}).`,
            )
          }
          try {
            await volumes.write(piece, chunk.offset + position)
          } catch (error) {
            writeError = error
            body.destroy()
            throw error
          }
          hash.update(piece)
          position += piece.length
          options.onBytes(piece.length)
          journal.progress(chunk.index, position)
        }
      }
      if (position === chunk.size) {
        const digest = `sha256:${hash.digest('hex')}`
        if (digest === chunk.digest) {
          journal.complete(chunk.index)
          return { resumedFrom }
        }
        if (refetched) {
          throw new AirgapError(
            'E_INTEGRITY',
            `Chunk ${chunk.index + 1} from ${repo.registry}/${repo.repository} hashes to ${digest}, not ${chunk.digest}.`,
            { hints: ['The registry or a proxy in front of it alters content; check it, then pull again.'] },
          )
        }
        refetched = true
        options.sink.emit(
          logEvent(
            'W_PULL_CHUNK_REFETCHED',
            `Chunk ${chunk.index + 1} did not match ${chunk.digest}; fetching it again from its start.`,
            { index: chunk.index, digest: chunk.digest, actual: digest },
          ),
        )
        position = 0
        hash = createHash('sha256')
        journal.progress(chunk.index, 0, true)
        continue
      }
      throw new Error(`the body ended at byte ${position} of ${chunk.size}`)
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error
      if (writeError !== undefined || error instanceof AirgapError) throw error
      failures += 1
      if (failures >= ATTEMPTS) {
        throw new AirgapError(
          'E_REMOTE',
          `Downloading chunk ${chunk.index + 1} of ${repo.registry}/${repo.repository} failed ${failures} times; last: ${(error as Error).message}.`,
          { hints: ['Check the registry and the network, then run the same command again: it continues.'] },
        )
      }
      options.sink.emit(
        logEvent(
          'W_PULL_RETRY',
          `Chunk ${chunk.index + 1}: ${(error as Error).message}; continuing at byte ${position}`,
          { index: chunk.index, offset: position, attempt: failures, problem: (error as Error).message },
        ),
      )
      journal.progress(chunk.index, position, true)
      await sleep(backoffDelay(failures - 1, defaultRetryPolicy), signal)
    }
  }
}

async function hashRange(
  volumes: VolumeSet,
  offset: number,
  length: number,
  hash: Hash,
  signal?: AbortSignal,
): Promise<void> {
  for await (const piece of volumes.createReadStream(offset, length, { chunkSize: 4 << 20 })) {
    signal?.throwIfAborted()
    hash.update(piece as Buffer)
  }
}
