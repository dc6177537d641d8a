import { Readable } from 'node:stream'
import type { BundleReader } from '../bundle/reader.js'

/**
 * Bytes read from the bundle per chunk of an upload stream. With 8 uploads at once every stream holds one or two
 * chunks, so this sets much of push's memory; 256 KiB keeps the throughput (docs/benchmarks.md, bench/push-memory.ts).
 */
const READ_CHUNK = 256 << 10

/** `length` bytes of the bundle from `position`, read in 256 KiB pieces as the consumer asks (backpressure). */
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
