import type { ServerResponse } from 'node:http'
import type { BufferPool } from './buffer-pool.js'

/**
 * Sends bytes of a bundle to an HTTP response by positional reads into two reused buffers, without a Readable in
 * between: while one chunk is being written to the socket, the next is read from the file into the other buffer.
 * A buffer is read into again only once the socket has taken the write that used it (its write callback), so at most
 * two chunks per response are in memory, nothing is allocated per chunk and a slow client holds the loop back
 * (backpressure). This is the site registry's blob path; measured against a Readable piped to the response in
 * docs/benchmarks.md (bench/serve-vs-distribution.ts).
 *
 * A client that goes away ends the loop with ERR_STREAM_PREMATURE_CLOSE, whether a write failed (reset) or the
 * response emitted 'close' before it finished (Node does not call the callback of a write to a destroyed socket, so
 * the loop also waits on that); a failed read (a truncated bundle) ends it with the read's error.
 *
 * With a `pool`, its buffers are the chunks (for a blob of at least one chunk): they come from it and go back to it at
 * the end, each only if its last write completed (a buffer whose write never called back may still be referenced by
 * the socket).
 */
export type PositionalRead = (position: number, length: number, into: Buffer) => Promise<Buffer>

export const SEND_CHUNK = 1 << 20

export interface SendOptions {
  /** Bytes per read and per write (SEND_CHUNK). */
  chunkSize?: number
  /** Where the two buffers come from; its buffer size is then the chunk size. */
  pool?: BufferPool
}

export async function sendPositional(
  read: PositionalRead,
  position: number,
  length: number,
  res: ServerResponse,
  options: SendOptions = {},
): Promise<void> {
  const chunkSize = options.pool?.size ?? options.chunkSize ?? SEND_CHUNK
  const size = Math.min(chunkSize, length)
  const pool = options.pool && size === options.pool.size ? options.pool : undefined
  /** Taken when first needed: a blob of one chunk uses one. */
  const buffers: (Buffer | undefined)[] = [undefined, undefined]
  /** Whether each buffer's last write has completed, so nothing refers to it any more. */
  const written = [true, true]
  const writes: Promise<void>[] = [Promise.resolve(), Promise.resolve()]
  let onClose: (() => void) | undefined
  const closed = new Promise<never>((_, reject) => {
    onClose = () => {
      if (!res.writableFinished) {
        reject(
          Object.assign(new Error('The client closed the connection.'), {
            code: 'ERR_STREAM_PREMATURE_CLOSE',
          }),
        )
      }
    }
    res.once('close', onClose)
  })
  closed.catch(() => {})
  try {
    let at = 0
    let i = 0
    while (at < length) {
      const n = Math.min(size, length - at)
      await Promise.race([writes[i], closed])
      if (res.destroyed) throw prematureClose()
      const buffer = buffers[i] ?? (pool ? pool.take() : Buffer.allocUnsafe(size))
      buffers[i] = buffer
      const chunk = await read(position + at, n, buffer.subarray(0, n))
      const j = i
      written[j] = false
      writes[j] = new Promise<void>((resolve, reject) => {
        res.write(chunk, (error) => {
          if (error) return reject(prematureClose(error))
          written[j] = true
          resolve()
        })
      })
      writes[i]!.catch(() => {})
      at += n
      i ^= 1
    }
    await Promise.race([Promise.all(writes), closed])
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closed])
  } finally {
    if (onClose) res.off('close', onClose)
    for (const k of [0, 1]) if (pool && buffers[k] && written[k]) pool.give(buffers[k])
  }
}

/** A failed write to the response is the connection's end (reset, closed), never the bundle's fault. */
function prematureClose(cause?: unknown): Error {
  return Object.assign(new Error('The client closed the connection.', { cause }), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  })
}
