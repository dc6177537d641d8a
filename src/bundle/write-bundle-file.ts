import { createHash, type Hash } from 'node:crypto'
import { runPool } from '../concurrency/pool.js'
import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import { pumpBody } from '../net/pump-body.js'
import { backoffDelay, defaultRetryPolicy, isTransientNetworkError, sleep } from '../net/retry.js'
import { YoungGarbage } from '../net/young-garbage.js'
import type { Journal } from './journal.js'
import type { Plan, PlannedMember } from './plan-layout.js'
import { END_OF_ARCHIVE, padTo512 } from './tar.js'
import type { VolumeSet } from './volumes.js'

/**
 * Writes a planned bundle into its volumes: every header and every small member first, then the remote members in
 * parallel, each streamed straight to its offset while its sha256 is computed, resumed with a Range request when a
 * connection drops, and checked against its digest before it counts as done. A checkpoint every few seconds flushes
 * the file and records progress in the journal, so a killed run loses at most those seconds.
 */
export interface WriteOptions {
  plan: Plan
  volumes: VolumeSet
  journal: Journal
  concurrency: number
  task: Task
  signal?: AbortSignal
  checkpointMs?: number
}

export interface WriteResult {
  /** Bytes downloaded in this run (not counting what an earlier run completed). */
  fetchedBytes: number
  /** Bytes of remote members an earlier run had already completed. */
  reusedBytes: number
}

/**
 * Each download copies what arrives into a staging buffer of this size and writes it when full. The buffers are
 * reused from member to member, so the socket's chunks are garbage as soon as they are copied (collected young,
 * with the objects undici made for them) instead of being kept until a write of them completes.
 */
const WRITE_CHUNK = 256 << 10
/** Received bytes between two collections of the socket chunks copied into the staging buffers: see YoungGarbage. */
const COLLECT_EVERY = 4 << 20
/** External memory above which a full collection follows (the staging buffers, a few MiB of chunks): see YoungGarbage. */
const EXTERNAL_LIMIT = 16 << 20
const STREAM_RETRIES = defaultRetryPolicy.retries

export async function writeBundleFile(options: WriteOptions): Promise<WriteResult> {
  const { plan, volumes, journal, task, signal } = options
  // Headers, small members, padding and the end-of-archive blocks: cheap, deterministic, rewritten on every run.
  for (const member of plan.members) {
    await volumes.write(member.header, member.headerOffset)
    if (member.content.kind === 'bytes') await volumes.write(member.content.bytes, member.dataOffset)
    const padding = padTo512(member.size)
    if (padding) await volumes.write(Buffer.alloc(padding), member.dataOffset + member.size)
  }
  await volumes.write(END_OF_ARCHIVE, plan.size - END_OF_ARCHIVE.length)

  const remote = plan.members.filter((m) => m.content.kind === 'remote')
  const pending = remote.filter((m) => !journal.state.done.has(m.path))
  const reusedBytes = remote.filter((m) => journal.state.done.has(m.path)).reduce((a, m) => a + m.size, 0)
  const total = remote.reduce((a, m) => a + m.size, 0)
  let doneBytes = reusedBytes
  let fetchedBytes = 0
  task.progress(doneBytes, total, 'bytes', 0)

  // Progress for the checkpoint: bytes of each member in flight, and members completed since the last one.
  const inFlight = new Map<string, number>()
  let completed: string[] = []
  const checkpoint = async () => {
    const done = completed
    const partial = new Map(inFlight)
    completed = []
    await volumes.sync()
    await journal.record({ done, partial })
  }
  let checkpointing = Promise.resolve()
  const timer = setInterval(() => {
    checkpointing = checkpointing.then(checkpoint).catch(() => undefined)
  }, options.checkpointMs ?? 2000)

  // One staging buffer per download in flight, taken when a member starts and given back when it ends.
  const staging: Buffer[] = []
  const garbage = new YoungGarbage(COLLECT_EVERY, EXTERNAL_LIMIT)
  const fetchOne = async (member: PlannedMember) => {
    const buffer = staging.pop() ?? Buffer.allocUnsafe(WRITE_CHUNK)
    await fetchMember(
      member,
      volumes,
      buffer,
      journal.state.partial.get(member.path) ?? 0,
      signal,
      (delta, downloaded) => {
        doneBytes += delta
        if (downloaded) fetchedBytes += delta
        if (downloaded) garbage.add(delta)
        inFlight.set(member.path, (inFlight.get(member.path) ?? 0) + delta)
        task.progress(doneBytes, total, 'bytes')
      },
    ).finally(() => staging.push(buffer))
    inFlight.delete(member.path)
    completed.push(member.path)
  }

  try {
    await runPool(pending, options.concurrency, fetchOne, signal)
  } finally {
    clearInterval(timer)
    await checkpointing
  }
  await checkpoint()
  task.progress(doneBytes, total, 'bytes', 0)
  return { fetchedBytes, reusedBytes }
}

/**
 * Streams one remote member to its place through `staging` (copied in, written when full). `resumeFrom` bytes are
 * already on disk from an earlier run: they are re-hashed from the file (a fast local read) and the download continues
 * from there. Bytes are hashed once written, never before, so the hash always covers exactly the bytes on disk; when a
 * stream breaks, what arrived is written first and the resume asks for the bytes after it. When the result does not match its digest and it was put
 * together from more than one response (a resume), the member is fetched once more from byte 0 before that is an
 * error: a server whose ranged answers differ from its whole ones must not fail a bundle that a fresh copy would fix.
 */
async function fetchMember(
  member: PlannedMember,
  volumes: VolumeSet,
  staging: Buffer,
  resumeFrom: number,
  signal: AbortSignal | undefined,
  /** Bytes added to (or, on a restart, taken from) the member; `downloaded` is false for bytes re-read from disk. */
  onBytes: (delta: number, downloaded: boolean) => void,
): Promise<void> {
  if (member.content.kind !== 'remote') return
  const source = member.content.source
  let hash = createHash('sha256')
  let offset = 0
  /** The bytes on disk came from more than one response (or an earlier run). */
  let resumed = false
  let restarted = false
  if (resumeFrom > 0 && resumeFrom <= member.size) {
    offset = await rehash(volumes, member.dataOffset, resumeFrom, hash, staging)
    onBytes(offset, false)
    resumed = true
  }
  const startOver = () => {
    onBytes(-offset, false)
    offset = 0
    hash = createHash('sha256')
    resumed = false
  }
  /** Bytes in `staging`, not yet written. */
  let filled = 0
  const flush = async () => {
    if (!filled) return
    const bytes = staging.subarray(0, filled)
    await volumes.write(bytes, member.dataOffset + offset)
    hash.update(bytes)
    offset += filled
    onBytes(filled, true)
    filled = 0
  }
  for (let attempt = 0; ; ) {
    try {
      const { body, partial } = await source.open(offset, signal)
      // The server ignored the range: start over.
      if (offset > 0 && !partial) startOver()
      else if (offset > 0) resumed = true
      try {
        await pumpBody(body, (chunk) => {
          if (offset + filled + chunk.length > member.size)
            throw integrityError(member, `the source sent more than the ${member.size} bytes it should have`)
          let copied = chunk.copy(staging, filled)
          filled += copied
          if (filled < staging.length) return undefined
          // The staging buffer is full: write it, then copy the rest of the chunk (the body waits meanwhile).
          return (async () => {
            await flush()
            while (copied < chunk.length) {
              const n = chunk.copy(staging, filled, copied)
              copied += n
              filled += n
              if (filled === staging.length) await flush()
            }
          })()
        })
      } catch (error) {
        // The stream broke: what arrived before is good, keep it so the resume continues after it.
        if (error instanceof AirgapError || signal?.aborted) filled = 0
        else await flush()
        throw error
      }
      await flush()
      if (offset !== member.size) {
        throw Object.assign(new Error(`stream ended at ${offset} of ${member.size} bytes`), {
          code: 'UND_ERR_SOCKET',
        })
      }
      const actual = hash.digest('hex')
      if (actual !== member.sha256)
        throw integrityError(member, `expected sha256:${member.sha256}, got sha256:${actual}`)
      return
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error
      if (error instanceof AirgapError && error.code === 'E_INTEGRITY' && resumed && !restarted) {
        restarted = true
        startOver()
        continue
      }
      const transient =
        isTransientNetworkError(error) || (error as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE'
      if (!transient || attempt >= STREAM_RETRIES) throw error
      await sleep(backoffDelay(attempt, defaultRetryPolicy), signal)
      attempt += 1
    }
  }
}

async function rehash(
  volumes: VolumeSet,
  start: number,
  length: number,
  hash: Hash,
  buffer: Buffer,
): Promise<number> {
  for (let done = 0; done < length; ) {
    const n = Math.min(buffer.length, length - done)
    const chunk = await volumes.read(start + done, n, buffer)
    hash.update(chunk.subarray(0, n))
    done += n
  }
  return length
}

function integrityError(member: PlannedMember, detail: string): AirgapError {
  const source = member.content.kind === 'remote' ? member.content.source.describe : member.path
  return new AirgapError('E_INTEGRITY', `${source} does not match its digest: ${detail}.`, {
    hints: [
      'A mirror, proxy or server is serving different content than its index says; check it, then run again.',
    ],
    data: { member: member.path },
  })
}
