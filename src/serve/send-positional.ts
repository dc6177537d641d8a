import type { ServerResponse } from 'node:http'

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
 */
export type PositionalRead = (position: number, length: number, into: Buffer) => Promise<Buffer>

export const SEND_CHUNK = 1 << 20

export async function sendPositional(
  read: PositionalRead,
  position: number,
  length: number,
  res: ServerResponse,
  chunkSize = SEND_CHUNK,
): Promise<void> {
  const size = Math.min(chunkSize, length)
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)]
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
      const chunk = await read(position + at, n, buffers[i]!.subarray(0, n))
      writes[i] = new Promise<void>((resolve, reject) => {
        res.write(chunk, (error) => (error ? reject(prematureClose(error)) : resolve()))
      })
      writes[i]!.catch(() => {})
      at += n
      i ^= 1
    }
    await Promise.race([Promise.all(writes), closed])
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closed])
  } finally {
    if (onClose) res.off('close', onClose)
  }
}

/** A failed write to the response is the connection's end (reset, closed), never the bundle's fault. */
function prematureClose(cause?: unknown): Error {
  return Object.assign(new Error('The client closed the connection.', { cause }), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  })
}
