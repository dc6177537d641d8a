import { type Readable, Transform } from 'node:stream'
import { AirgapError } from '../errors.js'
import type { HttpResponse } from '../net/http.js'
import { backoffDelay, defaultRetryPolicy, RetryableError, sleep } from '../net/retry.js'
import { PUSH_ACTIONS, repoName } from './push-failure.js'
import { describeErrorBody, type RegistryClient, type Repo } from './registry-client.js'
import { cancelUpload, parseRangeEnd, settledStatus, startUpload, uploadStatus } from './upload-session.js'

/**
 * Uploading one blob into a site registry: streamed from its source, continued after a failed request or an
 * interrupted run, and notices (I_UPLOAD_RESUMED, W_UPLOAD_RESTARTED, W_UPLOAD_SMALLER_CHUNKS) saying how it went on.
 */

/** Where an upload reads a blob's bytes: any byte range of it, as a stream (the bundle file, positional reads). */
export interface BlobSource {
  open(offset: number, length: number): Readable
}

export interface UploadBlobOptions {
  signal?: AbortSignal
  /** An upload session already opened (the Location of a mount the registry answered with 202). */
  session?: string
  /**
   * A session an earlier, interrupted run left for this blob: its status (how many bytes the registry holds) is asked
   * first, and the upload continues from there; a session the registry no longer knows is started again.
   */
  resume?: string
  /** Called with the session's URL whenever it changes (after each accepted chunk), to keep it for a later run. */
  onSession?: (session: string) => void
  /** Blobs (or remainders) up to this size go in the final PUT; larger ones in PATCH chunks first. */
  monolithicMax?: number
  /** Bytes per PATCH request. */
  chunkSize?: number
  /** Failed requests tolerated per blob before giving up. */
  attempts?: number
  /** Bytes sent so far for this blob (it can go down when a failed request's bytes did not arrive). */
  onProgress?: (bytes: number) => void
  onNotice?: (notice: UploadNotice) => void
}

export interface UploadNotice {
  code: 'I_UPLOAD_RESUMED' | 'W_UPLOAD_RESTARTED' | 'W_UPLOAD_SMALLER_CHUNKS'
  message: string
}

export interface UploadBlobResult {
  /** Bytes an earlier, interrupted run had already sent (not sent again). */
  continuedFrom: number
  /** Times the upload continued from the session's offset after a failed request. */
  resumed: number
  /** Times it had to start over in a new session. */
  restarted: number
}

export const DEFAULT_CHUNK_SIZE = 64 << 20
export const DEFAULT_MONOLITHIC_MAX = 16 << 20
const MIN_CHUNK_SIZE = 1 << 20

/**
 * Uploads a blob, streaming it from `source`: one PUT for small blobs, PATCH chunks then a PUT for large ones
 * (following each Location). When a request fails mid-way, the session's status (its Range) says how many bytes
 * arrived and the upload continues from there; a registry that lost or refuses the session gets a new one. The
 * registry checks the bytes against the digest on the final PUT, and the digest it reports is checked again here.
 */
export async function uploadBlob(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  size: number,
  source: BlobSource,
  options: UploadBlobOptions = {},
): Promise<UploadBlobResult> {
  const { signal } = options
  const scopes = [client.scope(repo, PUSH_ACTIONS)]
  const attempts = options.attempts ?? defaultRetryPolicy.retries + 1
  let chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
  let monolithicMax = options.monolithicMax ?? DEFAULT_MONOLITHIC_MAX
  let session: string
  let offset = 0
  const earlier = options.resume
    ? await settledStatus(client, repo, options.resume, signal).catch((error) => {
        if (error instanceof AirgapError && error.code === 'E_AUTH') throw error
        return undefined
      })
    : undefined
  if (earlier && earlier.offset > 0 && earlier.offset <= size) {
    session = earlier.session
    offset = earlier.offset
  } else session = options.session ?? (await startUpload(client, repo, signal))
  let reported = 0
  let failures = 0
  let rangeMismatches = 0
  let restartedFresh = false
  const result: UploadBlobResult = { continuedFrom: offset, resumed: 0, restarted: 0 }
  const report = (bytes: number) => {
    if (bytes !== reported) options.onProgress?.(bytes)
    reported = bytes
  }
  const what = `blob ${digest} (${size} bytes) to ${repoName(repo)}`
  options.onSession?.(session)
  if (offset > 0) {
    report(offset)
    result.resumed += 1
    options.onNotice?.({
      code: 'I_UPLOAD_RESUMED',
      message: `Continuing ${what} at byte ${offset}, where an interrupted run left it`,
    })
  }

  const restart = async (reason: string) => {
    await cancelUpload(client, repo, session, signal)
    session = await startUpload(client, repo, signal)
    options.onSession?.(session)
    offset = 0
    result.continuedFrom = 0
    report(0)
    result.restarted += 1
    options.onNotice?.({ code: 'W_UPLOAD_RESTARTED', message: `Started ${what} over: ${reason}` })
  }

  for (;;) {
    signal?.throwIfAborted()
    const remaining = size - offset
    const final = remaining <= monolithicMax
    const length = final ? remaining : Math.min(chunkSize, remaining)
    const start = offset
    let sourceError: unknown
    let input: Readable | undefined
    let body: Readable | undefined
    if (length > 0) {
      let streamed = 0
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          streamed += chunk.length
          report(start + streamed)
          callback(null, chunk)
        },
      })
      input = source.open(start, length)
      input.on('error', (error) => {
        sourceError ??= error
        counter.destroy(error)
      })
      body = input.pipe(counter)
    }
    const discard = () => {
      input?.destroy()
      body?.destroy()
    }
    let res: HttpResponse | undefined
    let failure: string
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-length': String(length),
      }
      if (final) {
        res = await client.requestUrl(
          repo,
          appendQuery(session, 'digest', digest),
          { method: 'PUT', headers, body: body ?? Buffer.alloc(0), signal, retry: false },
          scopes,
        )
        if (res.status === 201) {
          await res.body.dump()
          const reportedDigest = res.header('docker-content-digest')
          if (reportedDigest && reportedDigest !== digest) {
            throw new AirgapError(
              'E_INTEGRITY',
              `${repo.registry} stored ${what} under ${reportedDigest}, not ${digest}.`,
            )
          }
          report(size)
          return result
        }
      } else {
        headers['content-range'] = `${start}-${start + length - 1}`
        res = await client.requestUrl(
          repo,
          session,
          { method: 'PATCH', headers, body, signal, retry: false },
          scopes,
        )
        if (res.status === 202) {
          await res.body.dump()
          const location = res.header('location')
          if (location) session = client.resolveUrl(repo, location)
          const end = parseRangeEnd(res.header('range'))
          offset = end !== undefined && end <= size ? end : start + length
          report(offset)
          options.onSession?.(session)
          failures = 0
          continue
        }
      }
      failure = `HTTP ${res.status} ${await describeErrorBody(res)}`
    } catch (error) {
      discard()
      if (sourceError) throw sourceError
      if (signal?.aborted) throw signal.reason ?? error
      if (!isTransient(error)) throw error
      // Without the session URL (its signed state makes messages unreadable).
      failure = (error as Error).message.replace(/\?_state=[^\s:]*/g, '')
      res = undefined
    }
    discard()
    if (sourceError) throw sourceError

    // The request failed. Decide how to go on, then ask the session where it stands.
    const status = res?.status
    if (status !== undefined && !isRecoverableStatus(status)) {
      if (final && status === 400 && /DIGEST_INVALID|BLOB_UPLOAD_INVALID|SIZE_INVALID/i.test(failure)) {
        // The bytes the registry holds do not hash to the digest. After a resumed upload, start over once with the
        // whole blob; a fresh upload that still does not match means the source is not what its digest says.
        if (restartedFresh || (result.resumed === 0 && result.restarted === 0 && !options.session)) {
          throw new AirgapError('E_INTEGRITY', `${repo.registry} refused ${what}: ${failure}.`, {
            hints: [
              'The bundle holds bytes that do not match their digest: run `astrago-airgap verify` on it.',
            ],
            data: { registry: repo.registry, repository: repo.repository, digest },
          })
        }
        restartedFresh = true
        await restart(failure)
        continue
      }
      throw new AirgapError('E_REMOTE', `${repo.registry} refused ${what}: ${failure}.`, {
        data: { registry: repo.registry, repository: repo.repository, digest, status },
      })
    }
    failures += 1
    if (failures >= attempts) {
      throw new AirgapError('E_REMOTE', `Uploading ${what} failed ${failures} times; last: ${failure}.`, {
        hints: [
          'Check the registry and the network, then run the same command again: finished blobs are kept.',
        ],
        data: { registry: repo.registry, repository: repo.repository, digest },
      })
    }
    if (status === 413) {
      // A proxy in front of the registry (an ingress) limits request bodies: send smaller pieces.
      monolithicMax = 0
      chunkSize = Math.max(MIN_CHUNK_SIZE, Math.min(chunkSize, length) >> 2)
      options.onNotice?.({
        code: 'W_UPLOAD_SMALLER_CHUNKS',
        message: `${repo.registry} refused a ${length}-byte request (413); sending ${chunkSize}-byte chunks.`,
      })
    }
    if (status !== 401) await sleep(backoffDelay(failures - 1, defaultRetryPolicy), signal)
    // 404: the session is gone.
    if (status === 404) {
      await restart(failure)
      continue
    }
    const state = await uploadStatus(client, repo, session, signal).catch((error) => {
      if (error instanceof AirgapError && error.code === 'E_AUTH') throw error
      return undefined
    })
    // 416: the registry and this client disagree on where the session stands. While the registry holds more bytes
    // at each answer, an interrupted run's bytes are still arriving: go on from the new offset, as often as it takes.
    // Start over only when the offset stands still and the registry still disagrees.
    if (status === 416) {
      if (state && state.offset > start) failures = 0
      else if (++rangeMismatches > 2) {
        await restart(failure)
        continue
      }
    }
    if (state && state.offset <= size) {
      session = state.session
      options.onSession?.(session)
      offset = state.offset
      report(offset)
      result.resumed += 1
      options.onNotice?.({
        code: 'I_UPLOAD_RESUMED',
        message: `Continuing ${what} at byte ${offset} after: ${failure}`,
      })
    } else {
      await restart(failure)
    }
  }
}

function isTransient(error: unknown): boolean {
  if (error instanceof RetryableError) return true
  return error instanceof AirgapError && error.code === 'E_REMOTE' && error.cause !== undefined
}

/** Statuses after which asking the session and going on can help. */
function isRecoverableStatus(status: number): boolean {
  return (
    status === 401 ||
    status === 404 ||
    status === 408 ||
    status === 413 ||
    status === 416 ||
    status === 429 ||
    status >= 500
  )
}

function appendQuery(url: string, key: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}`
}
