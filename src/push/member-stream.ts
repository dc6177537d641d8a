import { Readable } from 'node:stream'
import type { BundleReader } from '../bundle/reader.js'

/**
 * Bytes read from the bundle per piece of an upload stream. Each piece is a new buffer, garbage once undici has written
 * it to the socket, and push collects V8's young generation every few MiB sent (BlobPlacer) to free them. A piece still
 * in flight at two collections is promoted to the old generation and then stays until a full collection, so the pieces
 * in flight (8 uploads × the stream's buffer, the one being read, the one being written) must add up to well under
 * the bytes between two collections: 64 KiB pieces, about 2 MiB in flight at -j 8. Measured at 1 GiB with the same
 * collections (docs/benchmarks.md, bench/push-memory.ts): peak RSS 86–96 MiB, against 101–104 with 256 KiB pieces and
 * 79–88 with 32 KiB ones, which took 19 % more CPU.
 */
const READ_CHUNK = 64 << 10

/** `length` bytes of the bundle from `position`, read in 64 KiB pieces as the consumer asks (backpressure). */
export function memberStream(reader: BundleReader, position: number, length: number): Readable {
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
